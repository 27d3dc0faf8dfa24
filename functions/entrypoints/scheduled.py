"""The timer trigger: one pass of reconcile and the background work that is due."""

from __future__ import annotations

import logging

import azure.functions as func

from functions import bootstrap

log = logging.getLogger("mlops.timer")


def reconcile(timer: func.TimerRequest) -> dict[str, int]:
    counts = bootstrap.orchestrator().reconcile()
    log.info("reconcile%s: %s", " (past due)" if timer.past_due else "", counts)
    return counts
