"""The ML half of the release loop: data checks, training and evaluation.

Each step is a module with a CLI (``python -m ml_pipeline.<step>``) so the same code
runs as a local subprocess and as an Azure ML command component.
"""
