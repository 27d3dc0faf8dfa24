"""The timer triggers: reconcile with the background work that is due, and following operations."""

from __future__ import annotations

import logging

import azure.functions as func

from functions import bootstrap
from functions.service.following import follow_all
from functions.service.invocations import invocation
from functions.service.reconcile import timer_pass

log = logging.getLogger("mlops.timer")


def reconcile(timer: func.TimerRequest) -> dict[str, int]:
    with invocation("reconcile"):
        counts = timer_pass(bootstrap.context())
    log.info("reconcile%s: %s", " (past due)" if timer.past_due else "", counts)
    return counts


def follow(timer: func.TimerRequest) -> dict[str, int]:
    with invocation("follow_operations"):
        counts = follow_all(bootstrap.context())
    if counts["finished"] or counts["errors"]:  # a quiet pass every few seconds is not worth a line
        log.info("follow%s: %s", " (past due)" if timer.past_due else "", counts)
    return counts
