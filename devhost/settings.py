"""Paths the local tooling needs, and the app settings the local host fills in when they are unset.

Settings of the app itself are read in functions/settings.py. Core Tools would take the defaults from
local.settings.json (a copy of local.settings.sample.json); the local host has no such file, so
``mlops up`` / ``mlops demo`` (and tests and benchmarks that start a host) put them in the environment.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from functions.settings import (
    DEFAULT_RECONCILE_SCHEDULE,
    FOLLOW_SCHEDULE_SETTING,
    LOCAL_FOLLOW_SCHEDULE,
    RECONCILE_SCHEDULE_SETTING,
)
from platforms.local.paths import REPO_ROOT, SCORE_SCRIPT

__all__ = ["LOCAL_APP_SETTING_DEFAULTS", "REPO_ROOT", "SCORE_SCRIPT", "apply_app_setting_defaults"]

# Settings function_app.py binds by name (%NAME% in a trigger), which the host must resolve at start.
LOCAL_APP_SETTING_DEFAULTS: dict[str, str] = {
    RECONCILE_SCHEDULE_SETTING: DEFAULT_RECONCILE_SCHEDULE,
    FOLLOW_SCHEDULE_SETTING: LOCAL_FOLLOW_SCHEDULE,  # a local deployment is up in seconds
}


def apply_app_setting_defaults(env: MutableMapping[str, str] | None = None) -> None:
    """Set each default in ``env`` (the process environment by default) unless it is already set."""
    target = os.environ if env is None else env
    for name, value in LOCAL_APP_SETTING_DEFAULTS.items():
        target.setdefault(name, value)
