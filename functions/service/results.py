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


class Forbidden(Exception):
    """The caller is known but may not do this (HTTP 403): not an approver, self-approval, a link for someone else."""


class Gone(Exception):
    """Too late (HTTP 410): the approval deadline passed (the release is expired now) or a link expired."""


class Invalid(ValueError):
    """The request lacks what the policy requires, e.g. a comment to decline (HTTP 400)."""
