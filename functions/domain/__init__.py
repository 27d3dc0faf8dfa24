"""The pure domain: the Release state machine, the gate, typed events and the value objects.

Imports nothing but the standard library and itself (import-linter checks it): no adapter,
no SDK, no azure.functions, and nothing that names an Azure Function.
"""
