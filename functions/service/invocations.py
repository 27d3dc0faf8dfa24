"""Which invocation is running: named in the timeline where a long step begins and where it ends.

The entry layer opens one (``invocation("on_registry_event")``) around each function's work; the
service reads it (``current()``) when it records an operation, so a release's timeline shows that the
invocation that began a deployment is not the one that saw it finish. An invocation that began or
saw the end of an operation logs its name, duration and what it did when it ends (``noted``): the
line benchmarks/invocations.py reads. A context variable, because the one Context is shared by
every invocation the host runs at once (each on its own thread).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

log = logging.getLogger("mlops.invocations")


@dataclass
class _Running:
    name: str
    started: float
    noted: list[str] = field(default_factory=list)


_current: ContextVar[_Running | None] = ContextVar("mlops_invocation", default=None)


@contextmanager
def invocation(trigger: str) -> Iterator[str]:
    """Name the running invocation ``<trigger>:<12 hex>`` until the block ends."""
    running = _Running(f"{trigger}:{uuid.uuid4().hex[:12]}", time.perf_counter())
    token = _current.set(running)
    try:
        yield running.name
    finally:
        _current.reset(token)
        if running.noted:
            elapsed_ms = (time.perf_counter() - running.started) * 1000
            log.info("invocation %s took %.0f ms: %s", running.name, elapsed_ms, "; ".join(running.noted))


def current() -> str:
    """The running invocation's name; "direct call" outside one (a script, a test calling the service)."""
    running = _current.get()
    return running.name if running else "direct call"


def noted(what: str) -> None:
    """Say what the running invocation did about an operation (logged with its duration when it ends)."""
    running = _current.get()
    if running is not None:
        running.noted.append(what)
