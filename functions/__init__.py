"""The orchestrator: domain, ports, service, entry points and the composition root.

The domain and the service import no cloud SDK; only the entry points import azure.functions and
only bootstrap names the adapters (import-linter checks both; see docs/architecture.md).
"""
