"""What a service call answers: the outcome of a delivered event, or why a command cannot be done."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    STALE = "stale"
    PARKED = "parked"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


class NotFound(LookupError):
    """No release with that id (HTTP 404)."""


class Conflict(Exception):
    """The release is not in a state that allows the request (HTTP 409)."""
