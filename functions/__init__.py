"""The orchestrator: domain model, handlers and ports. Imports no cloud SDK."""
