"""The entry layer: turns the Functions host's trigger objects into service calls and answers.

One module per kind of trigger (HTTP API, Event Grid, timer, CI webhooks). Every HTTP and webhook
body goes through `limits` first; every answer is JSON, errors as {"error": "..."} with a 4xx.
"""
