"""function_app.py indexed by the real Functions Python worker (azure-functions-runtime), in its own process.

`python -m devhost.worker APP_DIR` runs the worker's WorkerInitRequest and FunctionsMetadataRequest
with a stand-in for its protobuf messages; what it indexes is what Azure would load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devhost.host import load_function_app
from devhost.indexing import indexed_functions
from devhost.settings import REPO_ROOT
from functions.settings import (
    DEFAULT_FOLLOW_SCHEDULE,
    DEFAULT_RECONCILE_SCHEDULE,
    FOLLOW_SCHEDULE_SETTING,
    RECONCILE_SCHEDULE_SETTING,
)


def worker_index(app_dir: Path) -> tuple[int, dict[str, Any]]:
    schedules = {
        RECONCILE_SCHEDULE_SETTING: DEFAULT_RECONCILE_SCHEDULE,
        FOLLOW_SCHEDULE_SETTING: DEFAULT_FOLLOW_SCHEDULE,
    }
    env = {**os.environ, **schedules, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "devhost.worker", str(app_dir)],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 2, f"the worker library is missing: {done.stdout}{done.stderr}"
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_the_worker_indexes_every_function_of_the_app():
    code, result = worker_index(REPO_ROOT)
    assert code == 0 and result["indexed"] and result["error"] is None
    import function_app

    expected = {f.get_function_name() for f in indexed_functions(function_app.app)}
    assert {f["name"] for f in result["functions"]} == expected and len(expected) == 25
    bindings = {f["name"]: f["bindings"] for f in result["functions"]}
    event_grid = {name for name, binding in bindings.items() if binding == {"event": "eventGridTrigger"}}
    assert event_grid == {"on_build_event", "on_ml_event", "on_registry_event", "on_storage_event"}
    assert bindings["generic_hook"] == bindings["github_hook"] == {"req": "httpTrigger", "$return": "http"}
    assert bindings["reconcile"] == bindings["follow_operations"] == {"timer": "timerTrigger"}
    assert bindings["approve_release"] == {"req": "httpTrigger", "$return": "http"}
    assert bindings["ui_approve"] == {"req": "httpTrigger", "$return": "http"}


def write_app(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "function_app.py").write_text(textwrap.dedent(source))
    return directory


TWO_APPS = """
    import azure.functions as func

    app = func.FunctionApp()
    other = func.FunctionApp()

    @app.route(route="ping")
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")
"""

MISMATCHED_BINDING = """
    import azure.functions as func

    app = func.FunctionApp()

    @app.route(route="ping", trigger_arg_name="request")
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")
"""


@pytest.fixture(autouse=True)
def keep_the_real_function_app():
    """Loading a sample app by path registers it as ``function_app``, as the worker would: put ours back."""
    saved_module, saved_path = sys.modules.get("function_app"), list(sys.path)
    yield
    sys.path[:] = saved_path
    if saved_module is not None:
        sys.modules["function_app"] = saved_module
    else:
        sys.modules.pop("function_app", None)


def test_an_app_with_two_function_apps_is_refused_by_the_worker_and_the_local_host_alike(tmp_path: Path):
    app_dir = write_app(tmp_path / "two_apps", TWO_APPS)
    code, result = worker_index(app_dir)
    worker_says = "More than one FunctionApp or other top level function app instances are defined."
    assert code == 1 and not result["indexed"] and result["error"] == f"ValueError: {worker_says}"
    with pytest.raises(ValueError) as refused:
        load_function_app(str(app_dir / "function_app.py"))
    assert str(refused.value) == worker_says


def test_a_binding_that_names_no_parameter_is_refused_with_the_workers_own_error(tmp_path: Path):
    code, result = worker_index(write_app(tmp_path / "mismatched", MISMATCHED_BINDING))
    assert code == 1 and not result["indexed"]
    assert result["error"].startswith(
        "FunctionLoadError: cannot load the ping function: the following parameters are declared in Python"
    )
    assert "{'req'}" in result["error"]
