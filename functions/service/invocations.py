"""Which invocation is running: named in the timeline where a long step begins and where it ends.

The entry layer opens one (``invocation("on_registry_event")``) around each function's work; the
service reads it (``current()``) when it records an operation, so a release's timeline shows that the
invocation that began a deployment is not the one that saw it finish. A context variable, because
the one Context is shared by every invocation the host runs at once (each on its own thread).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_current: ContextVar[str] = ContextVar("mlops_invocation", default="")


@contextmanager
def invocation(trigger: str) -> Iterator[str]:
    """Name the running invocation ``<trigger>:<12 hex>`` until the block ends."""
    name = f"{trigger}:{uuid.uuid4().hex[:12]}"
    token = _current.set(name)
    try:
        yield name
    finally:
        _current.reset(token)


def current() -> str:
    """The running invocation's name; "direct call" outside one (a script, a test calling the service)."""
    return _current.get() or "direct call"
