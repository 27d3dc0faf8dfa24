"""The service layer: handlers, steps, reconcile, commands, delivery and background work.

Talks to the platform through functions.ports only (import-linter checks it).
"""
