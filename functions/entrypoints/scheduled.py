"""The timer trigger: one pass of reconcile and the background work that is due."""

from __future__ import annotations

import logging

import azure.functions as func

from functions import bootstrap
from functions.service.reconcile import timer_pass

log = logging.getLogger("mlops.timer")


def reconcile(timer: func.TimerRequest) -> dict[str, int]:
    counts = timer_pass(bootstrap.context())
    log.info("reconcile%s: %s", " (past due)" if timer.past_due else "", counts)
    return counts
