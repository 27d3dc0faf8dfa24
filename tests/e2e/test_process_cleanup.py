"""No process of a $MLOPS_HOME outlives `mlops down`, SIGTERM or a kill -9 followed by `mlops up`.

One home, in order: a host killed with SIGKILL while its release trains leaves the job running in a
group of its own, and `mlops down` (with no host left to ask) stops it; `mlops up` right after finds a
process of the home that no record accounts for and stops it before serving, and fails the release
whose job is gone, saying why; a release then goes live, and SIGTERM to that host stops the router, the
production server and itself as Ctrl-C does, leaving nothing of the home running and no pid file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest

from devhost.settings import REPO_ROOT
from platforms.local.inference_server import free_port
from platforms.local.processes import owned_env, owned_processes, pid_alive
from tests.crash_lab import DEFINITE, HostProcess, new_release_id, to_the_end, wait_definite

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("cleanup-home")


@pytest.fixture(scope="module")
def host(home):
    host = HostProcess(home, free_port(), free_port())
    yield host
    host.down()


def test_mlops_down_after_a_kill_9_stops_the_training_job_the_dead_host_left(host, home):
    release_id, event = new_release_id("cleanup-1")
    host.start(f"training_submitted@{release_id}")
    with contextlib.suppress(Exception):  # the host dies while it answers
        host.client.deliver("on_build_event", [event])
    assert host.wait_killed(60)
    assert owned_processes(home), "the training job runs on in a group of its own"
    done = subprocess.run([sys.executable, "-m", "devhost", "down"], cwd=REPO_ROOT, env=host.env(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "more process(es)" in done.stdout
    assert owned_processes(home) == []


def test_mlops_up_after_a_kill_9_stops_unrecorded_processes_and_settles_the_orphaned_release(host, home):
    (home / "host.pid").write_text("999999")  # what a host killed with SIGKILL leaves
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env=owned_env(home, os.environ),
                             start_new_session=True)  # fmt: skip
    try:
        host.start()
        assert stray.wait(timeout=30) is not None  # stopped before the host served
    finally:
        if stray.poll() is None:
            stray.kill()
    log = host.log_tail(20000)
    assert "the previous host (pid 999999) ended without stopping; cleaning up" in log
    assert f"stopped pid {stray.pid}, which no record accounts for" in log
    release_id, _ = new_release_id("cleanup-1")
    failed = wait_definite(host.client, release_id, DEFINITE, 60)
    assert failed and failed["state"] == "failed" and "job" in failed["error"], failed


def test_sigterm_cleans_up_as_ctrl_c_does(host, home):
    release_id, event = new_release_id("cleanup-2")
    to_the_end(host, release_id, event)
    running = owned_processes(home)
    assert running, "the router and the production server run"
    assert host.process is not None
    host.process.send_signal(signal.SIGTERM)
    assert host.process.wait(timeout=60) == 128 + signal.SIGTERM
    assert not (home / "host.pid").exists()
    assert [p for p in running if pid_alive(p.pid)] == []
    assert owned_processes(home) == []
