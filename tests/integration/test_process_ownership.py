"""Processes of a $MLOPS_HOME found by their owner mark and stopped by group; host instances by pid and
start time; training jobs that outlive, or die without, the host that started them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from platforms.local.instances import ProcessInstances
from platforms.local.orphans import stop_orphans
from platforms.local.processes import owned_env, owned_processes, pid_alive, stop_owned
from platforms.local.training import LocalTraining
from tests.doubles.publisher import RecordingPublisher

pytestmark = pytest.mark.integration
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
# A process that starts a child (the way azmlinfsrv starts its worker) and sleeps.
PARENT_OF_ONE = (
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "time.sleep(60)"
)


def start_marked(home: Path, *, session: bool = True, marked: bool = True) -> subprocess.Popen[bytes]:
    env = owned_env(home, os.environ) if marked else dict(os.environ)
    return subprocess.Popen([sys.executable, "-c", PARENT_OF_ONE], env=env, start_new_session=session)


def wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_processes_of_a_home_are_found_by_their_mark_children_included(tmp_path: Path):
    ours, stranger = start_marked(tmp_path / "home"), start_marked(tmp_path / "home", marked=False)
    other_home = start_marked(tmp_path / "other")
    try:
        wait_for(lambda: len(owned_processes(tmp_path / "home")) == 2)  # the parent and its child
        found = owned_processes(tmp_path / "home")
        assert {p.pgid for p in found} == {ours.pid} and ours.pid in {p.pid for p in found}
        assert stranger.pid not in {p.pid for p in found} and other_home.pid not in {p.pid for p in found}
    finally:
        for process in (ours, stranger, other_home):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_stop_owned_stops_whole_groups_and_spares_what_it_is_told_to_keep(tmp_path: Path):
    home = tmp_path / "home"
    stopped, kept = start_marked(home), start_marked(home)
    try:
        wait_for(lambda: len(owned_processes(home)) == 4)
        found = stop_owned(home, keep_groups={kept.pid}, timeout_s=5)
        assert {p.pgid for p in found} == {stopped.pid} and len(found) == 2
        assert stopped.wait(timeout=10) is not None
        wait_for(lambda: {p.pgid for p in owned_processes(home)} == {kept.pid})
    finally:
        os.killpg(kept.pid, signal.SIGKILL)
        kept.wait()


def test_stop_orphans_keeps_recorded_servers_and_running_jobs(tmp_path: Path):
    home = tmp_path / "home"
    recorded, job, orphan = start_marked(home), start_marked(home), start_marked(home)
    home.mkdir(exist_ok=True)
    (home / "deployments.json").write_text(
        json.dumps({"router": None, "servers": {"staging-r": {"pid": recorded.pid}}})
    )
    (home / "jobs" / "train-r").mkdir(parents=True)
    (home / "jobs" / "train-r" / "status.json").write_text(json.dumps({"state": "running", "pid": job.pid}))
    try:
        wait_for(lambda: len(owned_processes(home)) == 6)
        assert {p.pgid for p in stop_orphans(home)} == {orphan.pid}
        orphan.wait(timeout=10)
        assert pid_alive(recorded.pid) and pid_alive(job.pid)
    finally:
        for process in (recorded, job):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_an_instance_is_alive_while_its_process_is_and_a_reused_pid_is_not_it():
    me = ProcessInstances()
    assert me.alive(me.current()) is True
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = ProcessInstances(done.pid).current()
    done.wait()
    assert me.alive(gone) is False
    prefix, host, boot, namespace, pid, ticks = me.current().split(":")
    assert me.alive(f"{prefix}:{host}:{boot}:{namespace}:{pid}:{int(ticks) + 1}") is False  # same pid, later process
    assert me.alive(f"{prefix}:{host}:0{boot[1:]}:{namespace}:{pid}:{ticks}") is False  # an earlier boot
    assert me.alive(f"{prefix}:{host}:{boot}:1{namespace}:{pid}:{ticks}") is None  # another container's pid
    assert me.alive(f"{prefix}:another-machine:{boot}:{namespace}:{pid}:{ticks}") is None  # not checkable here
    assert me.alive("azure:abc") is None


@pytest.fixture
def long_params() -> dict:
    return {"alpha": 0.1}


def test_a_job_whose_process_is_killed_is_failed_at_once_not_after_a_timeout(tmp_path: Path, long_params):
    publisher = RecordingPublisher()
    training = LocalTraining(tmp_path, publisher)
    job = training.submit("rel-killed", {"buildId": "1"}, long_params, None)
    status_path = tmp_path / "jobs" / job / "status.json"
    wait_for(lambda: json.loads(status_path.read_text()).get("pid"))
    pid = json.loads(status_path.read_text())["pid"]
    assert os.getpgid(pid) == pid  # a process group of its own, apart from this process
    os.killpg(pid, signal.SIGKILL)
    event = publisher.wait_for(lambda e: e["data"].get("runId") == job, 20)
    assert event["eventType"] == RUN_STATUS_CHANGED and event["data"]["runStatus"] == "Failed"
    assert "the job's process ended before the job did (exit code -9)" in event["data"]["runProperties"]["error"]
    assert training.status(job).state == "failed"


def test_a_job_outlives_the_host_that_started_it_and_the_next_host_announces_its_end(tmp_path: Path):
    # A host process submits a job and dies at once (os._exit: no cleanup, like kill -9).
    script = (
        "import os, sys; from pathlib import Path; from platforms.local.training import LocalTraining;"
        "from tests.doubles.publisher import RecordingPublisher;"
        f"print(LocalTraining(Path({str(tmp_path)!r}), RecordingPublisher()).submit('rel-adopted', {{}}, {{}}, None));"
        "sys.stdout.flush(); os._exit(0)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    job = done.stdout.strip()
    publisher = RecordingPublisher()
    assert LocalTraining(tmp_path, publisher).adopt_jobs() == 1
    event = publisher.wait_for(lambda e: e["data"].get("runId") == job, 90)
    assert event["eventType"] == RUN_COMPLETED
    assert (tmp_path / "jobs" / job / "model" / "model.joblib").is_file()


def test_a_running_job_found_without_its_process_is_failed_on_adoption(tmp_path: Path):
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    job_dir = tmp_path / "jobs" / "train-lost-000000"
    (job_dir / "logs").mkdir(parents=True)
    status = {"job": "train-lost-000000", "state": "running", "release_id": "rel-lost", "build_id": "", "commit": "",
              "pid": done.pid, "started_by": done.pid, "current_step": "train", "steps": {},
              "commands": {"train": []}}  # fmt: skip
    (job_dir / "status.json").write_text(json.dumps(status))
    publisher = RecordingPublisher()
    assert LocalTraining(tmp_path, publisher).adopt_jobs() == 1
    event = publisher.wait_for(lambda e: e["data"].get("runId") == "train-lost-000000", 10)
    assert event["data"]["runStatus"] == "Failed" and event["data"]["runProperties"]["failed_step"] == "train"
