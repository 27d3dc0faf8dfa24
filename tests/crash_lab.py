"""The crash matrix: kill -9 a real `mlops up` at every step boundary of a release, restart it, and look.

Shared by tests/e2e/test_crash_matrix.py (which asserts) and benchmarks/crash_recovery.py (which
measures). One $MLOPS_HOME for the whole run. A first release goes live, so later ones have a champion
and a progressive rollout; a second one, never crashed, gives the clean-run time of each stretch.
Then, for each boundary, a host started with MLOPS_LOCAL_CRASH_AFTER=<step>@<release> (the host
SIGKILLs itself right after saving that step of that release: exactly what kill -9 at the boundary
leaves) runs a new release to it; a host started at once after it (carrying the next boundary's crash
point, for the next release) must bring the release to its definite state. What each case records:
seconds from the restart to a healthy host and to the definite state, the processes of the home no
record accounts for (orphans), servers launched more than once for one deployment (duplicates), and
releases of the home not at rest.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from devhost.commands_builds import build_completed_event, release_of
from devhost.settings import REPO_ROOT, apply_app_setting_defaults
from devhost.signing import LocalSigner
from devhost.traffic import LiveTraffic
from platforms.local.deployer import LocalDeployer
from platforms.local.inference_server import free_port
from platforms.local.orphans import recorded_groups
from platforms.local.processes import owned_processes, pid_alive, stop_owned
from tests.e2e.conftest import APPROVER, REQUESTER, RunningHost

DEFINITE = {"live", "awaiting_approval", "rolled_back", "failed", "rejected", "superseded", "declined", "expired"}
# Short rollout windows with live traffic flowing, so a release with a champion rolls out in seconds.
ROLLOUT = {
    "steps": [{"kind": "shadow", "share": 50}, {"kind": "canary", "share": 10}, {"kind": "canary", "share": 100}],
    "window_s": 1,
    "min_requests": 5,
    "max_wait_s": 60,
    "keep_previous_s": 600,
    "latency": {"decides": False},
}
LAUNCH_LOG = re.compile(r"^(?P<role>staging|production)-(?P<key>.+)-(?P<port>\d+)\.log$")


@dataclass(frozen=True)
class Boundary:
    """Where the host dies: right after saving timeline entry ``crash_after`` (``step[#n]``)."""

    name: str
    crash_after: str
    approved: bool  # whether the release is approved before the crash (the promotion's boundaries)
    definite: str  # where it must end: awaiting_approval, or live

    @property
    def step(self) -> str:
        return self.crash_after.split("#")[0]


BOUNDARIES: tuple[Boundary, ...] = (
    Boundary("training", "training_submitted", False, "awaiting_approval"),
    Boundary("registering (claimed, not begun)", "run_completed", False, "awaiting_approval"),
    Boundary("packaging (image build requested)", "packaging", False, "awaiting_approval"),
    Boundary("staging (claimed, not begun)", "image_pushed", False, "awaiting_approval"),
    Boundary("staging (server starting)", "operation_started#1", False, "awaiting_approval"),
    Boundary("staging (up, not tested)", "operation_succeeded#1", False, "awaiting_approval"),
    Boundary("awaiting approval", "approval_requested", False, "awaiting_approval"),
    Boundary("promoting (claimed, not begun)", "approved", True, "live"),
    Boundary("promoting (beside starting)", "operation_started#2", True, "live"),
    Boundary("promoting (tested directly, no traffic)", "production_direct_passed", True, "live"),
    Boundary("rollout planned", "rollout_planned", True, "live"),
    Boundary("rollout step 1: shadow 50%", "rollout_step_begun#1", True, "live"),
    Boundary("rollout step 1 holding its window", "rollout_step_holding#1", True, "live"),
    Boundary("rollout step 2: canary 10%", "rollout_step_begun#2", True, "live"),
    Boundary("rollout step 3: canary 100%", "rollout_step_begun#3", True, "live"),
    Boundary("live", "live", True, "live"),
)


@dataclass
class CaseResult:
    boundary: Boundary
    release_id: str
    crashed: bool  # the host died of SIGKILL at the boundary
    state: str  # the release's state once definite (or when time ran out)
    error: str | None
    restart_to_healthy_s: float
    restart_to_definite_s: float | None  # None: not definite within the time allowed
    clean_run_s: float | None  # the same stretch in the release that never crashed
    orphans: list[str] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    not_at_rest: list[str] = field(default_factory=list)
    stale_records: list[str] = field(default_factory=list)
    unneeded_staging: list[str] = field(default_factory=list)


class HostProcess:
    """`python -m devhost up` on fixed ports for one $MLOPS_HOME, restartable; its log appended."""

    def __init__(self, home: Path, port: int, production_port: int) -> None:
        self.home, self.port, self.production_port = home, port, production_port
        self.process: subprocess.Popen[bytes] | None = None
        self.client = RunningHost(f"http://127.0.0.1:{port}", home, timeout_s=60, production_port=production_port)

    def env(self, crash_after: str = "") -> dict[str, str]:
        env = {
            **os.environ,
            "MLOPS_HOME": str(self.home),
            "MLOPS_HOST_URL": f"http://127.0.0.1:{self.port}",
            "MLOPS_PRODUCTION_PORT": str(self.production_port),
            "MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 50}',
            "MLOPS_ROLLOUT_POLICY": json.dumps(ROLLOUT),
            "MLOPS_LOCAL_CRASH_AFTER": crash_after,
        }
        apply_app_setting_defaults(env)
        return env

    def start(self, crash_after: str = "", timeout_s: float = 60) -> float:
        """Start it; the seconds until it answers its health check."""
        started = time.monotonic()
        with open(self.home / "host.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devhost", "up", "--port", str(self.port)],
                cwd=REPO_ROOT, env=self.env(crash_after), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        while not self.client.healthy():
            if self.process.poll() is not None or time.monotonic() - started > timeout_s:
                raise RuntimeError(f"host did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        return time.monotonic() - started

    def wait_killed(self, timeout_s: float) -> bool:
        """Whether the host died of SIGKILL (its crash point) within ``timeout_s``."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s) == -signal.SIGKILL
        except subprocess.TimeoutExpired:
            return False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def down(self) -> None:
        """`mlops down`: the host and every process of the home."""
        subprocess.run([sys.executable, "-m", "devhost", "down"], cwd=REPO_ROOT, env=self.env(), check=False,
                       capture_output=True, timeout=120)  # fmt: skip
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        return (self.home / "host.log").read_text(errors="replace")[-chars:]


def new_release_id(build_id: str) -> tuple[str, dict[str, Any]]:
    event = build_completed_event("0123456789abcdef", {}, build_id, requester=REQUESTER)
    return release_of(event), event


def release_or_none(client: RunningHost, release_id: str) -> dict[str, Any] | None:
    try:
        return client.release(release_id)
    except Exception:
        return None


def wait_definite(client: RunningHost, release_id: str, states: set[str], timeout_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        release = release_or_none(client, release_id)
        if release and release["state"] in states:
            return release
        time.sleep(0.2)
    return release_or_none(client, release_id)


def approve(client: RunningHost, release_id: str) -> None:
    """Approve as APPROVER; a host that dies while answering (the crash point) is no error here."""
    with suppress(Exception):
        client.approve(release_id, LocalSigner.for_home(client.home, APPROVER), "crash matrix")


def orphans(home: Path) -> list[str]:
    """Processes of the home that no record accounts for (nothing will ever follow or stop them)."""
    keep = recorded_groups(home)
    return [f"pid {p.pid}: {p.command[:120]}" for p in owned_processes(home) if p.pgid not in keep]


def duplicates(home: Path) -> dict[str, int]:
    """Deployments whose server was launched more than once (each launch writes a log of its own)."""
    launches = Counter(
        f"{m['role']}-{m['key']}" for log in (home / "logs").glob("*.log") if (m := LAUNCH_LOG.match(log.name))
    )
    return {name: count for name, count in launches.items() if count > 1}


def stale_records(home: Path) -> list[str]:
    """Recorded servers whose process is gone (read from the file itself, not through the deployer's own
    idea of a dead record, which spares one that has traffic)."""
    state = json.loads((home / "deployments.json").read_text()) if (home / "deployments.json").exists() else {}
    return [name for name, entry in (state.get("servers") or {}).items() if not pid_alive(entry.get("pid"))]


def unneeded_staging(home: Path, client: RunningHost) -> list[str]:
    """Staging servers still recorded for releases past staging (live or ended): nobody will use them."""
    staged = LocalDeployer(home).staging_releases()
    states = {release_id: (release_or_none(client, release_id) or {}).get("state") for release_id in staged}
    return [
        f"{key}: {value}"
        for key, value in states.items()
        if value not in ("awaiting_approval", "deploying_staging", "promoting")
    ]


def not_at_rest(client: RunningHost) -> list[str]:
    releases = client.releases(limit=200)
    return [f"{r['id']}: {r['state']}" for r in releases if r["state"] not in DEFINITE]


def _seconds_between(release: dict[str, Any], step: str, nth: int, end_steps: set[str]) -> float | None:
    """Seconds from the release's nth timeline entry ``step`` to the first later entry in ``end_steps``."""
    seen = 0
    start: datetime | None = None
    for entry in release["timeline"]:
        if start is None and entry["step"] == step:
            seen += 1
            if seen == nth:
                start = datetime.fromisoformat(entry["at"])
        elif start is not None and entry["step"] in end_steps:
            return (datetime.fromisoformat(entry["at"]) - start).total_seconds()
    return None


END_STEPS = {"awaiting_approval": {"approval_requested"}, "live": {"live"}}


@contextmanager
def live_traffic(host: HostProcess, rate_per_s: float = 30.0) -> Iterator[LiveTraffic]:
    from sklearn.datasets import load_diabetes

    rows = [list(map(float, row)) for row in load_diabetes().data]
    with LiveTraffic(host.client.production_url, rows, rate_per_s=rate_per_s) as traffic:
        yield traffic


def run_matrix(
    home: Path, boundaries: tuple[Boundary, ...] = BOUNDARIES, recovery_timeout_s: float = 180, say: Any = print
) -> list[CaseResult]:
    """Run every boundary's case in ``home``; the results (the caller asserts or reports)."""
    host = HostProcess(home, free_port(), free_port())
    results: list[CaseResult] = []
    try:
        run_id = uuid.uuid4().hex[:6]
        first_id, first = new_release_id(f"crash-{run_id}-first")
        clean_id, clean = new_release_id(f"crash-{run_id}-clean")
        cases = [(b, *new_release_id(f"crash-{run_id}-{i:02d}")) for i, b in enumerate(boundaries)]
        host.start(f"{cases[0][0].crash_after}@{cases[0][1]}" if cases else "")
        with live_traffic(host):
            for release_id, event in ((first_id, first), (clean_id, clean)):
                to_the_end(host, release_id, event)
            clean_release = host.client.release(clean_id)
            for index, (boundary, release_id, event) in enumerate(cases):
                step, _, nth = boundary.crash_after.partition("#")
                baseline = _seconds_between(clean_release, step, int(nth or 1), END_STEPS[boundary.definite])
                result = _case(host, boundary, release_id, event, cases[index + 1 :], recovery_timeout_s, baseline)
                say(result)
                results.append(result)
    finally:
        host.down()
        stop_owned(home)  # whatever a failed run left: nothing of it may outlive the run
    return results


def run_to_the_end(host: HostProcess, release_id: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """Deliver the build, approve the release once it waits, and wait until its promotion ended; the
    release as it ended (or as it stood when a wait ran out)."""
    host.client.deliver("on_build_event", [event])
    release = wait_definite(host.client, release_id, DEFINITE, 180)
    if release and release["state"] == "awaiting_approval":
        approve(host.client, release_id)
        release = wait_definite(host.client, release_id, {"live", "rolled_back", "failed"}, 300)
    return release


def to_the_end(host: HostProcess, release_id: str, event: dict[str, Any]) -> None:
    """``run_to_the_end``, which must end live."""
    done = run_to_the_end(host, release_id, event)
    assert done and done["state"] == "live", done


def _case(
    host: HostProcess,
    boundary: Boundary,
    release_id: str,
    event: dict[str, Any],
    later: list[tuple[Boundary, str, dict[str, Any]]],
    recovery_timeout_s: float,
    baseline: float | None,
) -> CaseResult:
    with suppress(Exception):  # the host may die while it answers: that is the crash point
        host.client.deliver("on_build_event", [event])
    if boundary.approved:
        waiting = wait_definite(host.client, release_id, DEFINITE, 120)
        if waiting and waiting["state"] == "awaiting_approval":
            approve(host.client, release_id)
    crashed = host.wait_killed(180)
    if not crashed:
        host.kill()  # it never reached the boundary: the case fails, the run goes on
    restarted = time.monotonic()
    next_crash = f"{later[0][0].crash_after}@{later[0][1]}" if later else ""
    healthy_s = host.start(next_crash)
    release = wait_definite(host.client, release_id, {boundary.definite, *DEFINITE - {"awaiting_approval"}},
                            recovery_timeout_s)  # fmt: skip
    definite_s = time.monotonic() - restarted if release and release["state"] in DEFINITE else None
    leftovers = _settled_leftovers(host, release_id)
    return CaseResult(
        boundary=boundary,
        release_id=release_id,
        crashed=crashed,
        state=(release or {}).get("state", "missing"),
        error=(release or {}).get("error"),
        restart_to_healthy_s=healthy_s,
        restart_to_definite_s=definite_s,
        clean_run_s=baseline,
        **leftovers,
    )


def _settled_leftovers(host: HostProcess, release_id: str, settle_s: float = 20.0) -> dict[str, Any]:
    """What is left over once the host's own cleanup had time to finish (a release seen live is still
    removing its staging server, a promotion its older deployment): looked at until nothing is left or
    ``settle_s`` passed (a bound, not a figure). What a crash really leaves stays, and the last look
    reports it."""
    deadline = time.monotonic() + settle_s
    while True:
        found = {
            "orphans": orphans(host.home),
            "duplicates": duplicates(host.home),
            "not_at_rest": [r for r in not_at_rest(host.client) if not r.startswith(release_id)],
            "stale_records": stale_records(host.home),
            "unneeded_staging": unneeded_staging(host.home, host.client),
        }
        if not any(found.values()) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
