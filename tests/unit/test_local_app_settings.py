"""The app settings `mlops up` and `mlops demo` fill in when unset (devhost/settings.py), in-process.

The host is never started here: the commands are stopped right after they set the environment. Each
test first sets the variables it touches through monkeypatch, so whatever the command sets is undone.
"""

from __future__ import annotations

import argparse
import json
import os

import pytest

from devhost import cli
from devhost.settings import LOCAL_APP_SETTING_DEFAULTS, REPO_ROOT, apply_app_setting_defaults
from functions.settings import (
    DEFAULT_RECONCILE_SCHEDULE,
    FOLLOW_SCHEDULE_SETTING,
    LOCAL_FOLLOW_SCHEDULE,
    RECONCILE_SCHEDULE_SETTING,
)


@pytest.fixture
def unset_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first, so monkeypatch restores the variable's original state whatever the command sets.
    monkeypatch.setenv(RECONCILE_SCHEDULE_SETTING, "placeholder")
    monkeypatch.delenv(RECONCILE_SCHEDULE_SETTING)
    monkeypatch.setenv("MLOPS_HOST_URL", "http://127.0.0.1:7999")


def test_defaults_fill_only_what_is_unset() -> None:
    env: dict[str, str] = {}
    apply_app_setting_defaults(env)
    local = {RECONCILE_SCHEDULE_SETTING: DEFAULT_RECONCILE_SCHEDULE, FOLLOW_SCHEDULE_SETTING: LOCAL_FOLLOW_SCHEDULE}
    assert env == local == LOCAL_APP_SETTING_DEFAULTS

    chosen = {RECONCILE_SCHEDULE_SETTING: "0 */5 * * * *", FOLLOW_SCHEDULE_SETTING: "*/30 * * * * *"}
    apply_app_setting_defaults(chosen)
    assert chosen == {RECONCILE_SCHEDULE_SETTING: "0 */5 * * * *", FOLLOW_SCHEDULE_SETTING: "*/30 * * * * *"}


def test_the_sample_local_settings_carry_the_default() -> None:
    values = json.loads((REPO_ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    assert values[RECONCILE_SCHEDULE_SETTING] == DEFAULT_RECONCILE_SCHEDULE
    assert values[FOLLOW_SCHEDULE_SETTING] == LOCAL_FOLLOW_SCHEDULE


@pytest.mark.usefixtures("unset_schedule")
def test_mlops_demo_sets_the_default_before_it_starts_a_host(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def run_demo(port: int, keep_running: bool = True) -> int:
        seen.append(os.environ.get(RECONCILE_SCHEDULE_SETTING))
        return 0

    monkeypatch.setattr("devhost.demo.run_demo", run_demo)

    assert cli.cmd_demo(argparse.Namespace(port=7999, stop=True, data="diabetes")) == 0
    assert seen == [DEFAULT_RECONCILE_SCHEDULE]


@pytest.mark.usefixtures("unset_schedule")
def test_mlops_up_sets_the_default_first(monkeypatch: pytest.MonkeyPatch) -> None:
    class AlreadyServing:  # stops cmd_up at its first check, before any socket or process
        def __init__(self, base_url: str) -> None:
            self.base_url = base_url

        def healthy(self) -> bool:
            return True

    monkeypatch.setattr("devhost.commands_host.HostClient", AlreadyServing)

    assert cli.cmd_up(argparse.Namespace(port=7999, detach=True)) == 0
    assert os.environ[RECONCILE_SCHEDULE_SETTING] == DEFAULT_RECONCILE_SCHEDULE


@pytest.mark.usefixtures("unset_schedule")
def test_an_explicit_schedule_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RECONCILE_SCHEDULE_SETTING, "0 */5 * * * *")
    monkeypatch.setattr("devhost.demo.run_demo", lambda port, keep_running=True: 0)

    assert cli.cmd_demo(argparse.Namespace(port=7999, stop=True, data="diabetes")) == 0
    assert os.environ[RECONCILE_SCHEDULE_SETTING] == "0 */5 * * * *"


@pytest.mark.usefixtures("unset_schedule")
def test_mlops_demo_with_breast_cancer_runs_the_classifier_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    def recorder(kind: str):
        def run(port: int, keep_running: bool = True) -> int:
            ran.append(kind)
            return 0

        return run

    monkeypatch.setattr("devhost.demo.run_demo", recorder("regressor"))
    monkeypatch.setattr("devhost.demo_classifier.run_classifier_demo", recorder("classifier"))

    assert cli.cmd_demo(argparse.Namespace(port=7999, stop=True, data="breast_cancer")) == 0
    assert cli.cmd_demo(argparse.Namespace(port=7999, stop=True, data="diabetes")) == 0
    assert ran == ["classifier", "regressor"]
