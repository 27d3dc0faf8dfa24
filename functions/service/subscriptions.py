"""Which Event Grid function (one per subscription) takes which event types.

The delivery dead-letters an event that reaches the wrong function; infra/ and the local bus
route by the same table (tests check that they agree).
"""

from __future__ import annotations

from functions.domain import events as ev

FUNCTION_EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "on_build_event": (ev.BUILD_COMPLETED, ev.RELEASE_APPROVED),
    "on_ml_event": (ev.RUN_COMPLETED, ev.RUN_STATUS_CHANGED, ev.MODEL_REGISTERED, ev.DATASET_DRIFT_DETECTED),
    "on_registry_event": (ev.IMAGE_PUSHED, ev.IMAGE_DELETED),
    "on_storage_event": (ev.BLOB_CREATED,),
}


def function_for(event_type: str) -> str | None:
    """The function whose subscription takes ``event_type``, if one does."""
    return next((function for function, types in FUNCTION_EVENT_TYPES.items() if event_type in types), None)
