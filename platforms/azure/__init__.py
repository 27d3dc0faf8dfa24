"""Azure adapters (MLOPS_PLATFORM=azure): Azure ML, ACR, ACI, AKS, Table Storage, Event Grid."""
