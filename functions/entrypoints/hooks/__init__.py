"""Build-system webhooks: each delivery becomes the MLOps.BuildCompleted event a CI step would publish.

One module per provider, with its own authentication and payload mapping; `common` holds what
they share (the envelope, stable event ids, the hand-over to the service). Order of checks:
secret configured (else 503, never accept unauthenticated) -> body size (413) ->
authentication (401, nothing recorded) -> payload (400) -> the service (202).

Replay: the event id is derived from the delivery (GitHub's X-GitHub-Delivery, Azure DevOps'
subscriptionId + notificationId), so a replayed delivery is a duplicate for the service; the
same build id maps to the same release, which does not start twice. Secrets are read through
the settings on every request (rotation needs no restart) and never logged.
"""
