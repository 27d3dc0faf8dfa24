"""A real `mlops up` host on a free 127.0.0.1 port with its own $MLOPS_HOME, and how tests decide as a person.

Approvals and declines are signed the way `mlops approve/reject` sign them (devhost/signing.py), with
the key in the host's $MLOPS_HOME: ``host.approve(id, signed(host, APPROVER), "ship it")`` (which only
begins the promotion: ``approve_to_the_end`` waits for it), or over raw HTTP with ``post_decision``.
Builds the tests start carry ``REQUESTER`` as their requester, so the default approval policy (no
self-approval; fail closed when the requester is unknown) lets ``APPROVER`` decide.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from devhost.client import HostClient, release_path
from devhost.commands_builds import build_completed_event, release_of
from devhost.settings import REPO_ROOT, apply_app_setting_defaults
from devhost.signing import LocalSigner
from platforms.local.inference_server import free_port

REQUESTER = "ci-e2e@example.com"  # who "started" the builds the tests send
APPROVER = "e2e-approver@example.com"  # who approves them: someone else
AT_ONCE = '{"steps": []}'  # MLOPS_ROLLOUT_POLICY without steps


class RunningHost(HostClient):
    """A client of a host a test started: where that host keeps its state, and the releases tests started."""

    def __init__(self, base_url: str, home: Path, timeout_s: float, production_port: int = 0) -> None:
        super().__init__(base_url, timeout_s=timeout_s)
        self.home = home
        self.production_port = production_port
        self.started: list[str] = []

    @property
    def production_url(self) -> str:
        return f"http://127.0.0.1:{self.production_port}/score"

    def live_traffic(self) -> dict[str, int]:
        """How many scoring requests the production router sent each deployment (its GET /router)."""
        info = requests.get(f"http://127.0.0.1:{self.production_port}/router", timeout=10).json()
        return {str(k): int(v) for k, v in info["counts"].items()}


@contextmanager
def running_host(home: Path, extra_env: dict[str, str] | None = None) -> Iterator[RunningHost]:
    """`python -m devhost up` on free ports with its own $MLOPS_HOME; `devhost down` afterwards."""
    port, production_port = free_port(), free_port()
    env = {
        **os.environ,
        "MLOPS_HOME": str(home),
        "MLOPS_HOST_URL": f"http://127.0.0.1:{port}",
        "MLOPS_PRODUCTION_PORT": str(production_port),
        # Traffic moves at once after the direct tests unless a test sets a rollout policy: most tests
        # send no live traffic for rollout steps to judge (tests/e2e/test_progressive_rollout.py does).
        "MLOPS_ROLLOUT_POLICY": AT_ONCE,
        **(extra_env or {}),
    }
    apply_app_setting_defaults(env)  # what `mlops up` does too: MLOPS_RECONCILE_SCHEDULE unless set
    log = open(home / "host.log", "wb")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "up", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = RunningHost(f"http://127.0.0.1:{port}", Path(home), timeout_s=120, production_port=production_port)
    try:
        deadline = time.monotonic() + 60
        while not client.healthy():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"host did not start:\n{(home / 'host.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield client
    finally:
        subprocess.run([sys.executable, "-m", "devhost", "down"], cwd=REPO_ROOT, env=env, check=False,
                       capture_output=True, timeout=60)  # fmt: skip
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    # Non-inferiority with a 50-mse margin: a retrain with near-default parameters is promoted whatever
    # the champion, so tests reach approval in any order; alpha=5 (about +1,000 mse) is still rejected.
    policy = {"MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 50}'}
    with running_host(tmp_path_factory.mktemp("mlops-home"), policy) as client:
        yield client


def wait_for_state(client: HostClient, release_id: str, states: set[str], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            release = client.release(release_id)
            if release["state"] in states:
                return release
        except Exception:
            release = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{release_id} did not reach {states}: {release}")
        time.sleep(0.3)


ENDED_PROMOTING = {"live", "rolled_back", "failed"}


def approve_to_the_end(host: RunningHost, release_id: str, approver: str, comment: str = "ship it") -> dict:
    """Approve, then wait while the follow timer carries the promotion on (beside, direct tests, traffic)."""
    answer = host.approve(release_id, signed(host, approver), comment)
    assert answer["state"] == "promoting", answer  # the approval only begins it
    return wait_for_state(host, release_id, ENDED_PROMOTING)


def post_webhook(client: HostClient, function: str, body: bytes | str, event_type: str | None = "Notification"):
    headers = {"Content-Type": "application/json"}
    if event_type is not None:
        headers["aeg-event-type"] = event_type
    return requests.post(
        f"{client.base_url}/runtime/webhooks/eventgrid?functionName={function}", data=body, headers=headers, timeout=60
    )


def signed(host: RunningHost, identity: str) -> LocalSigner:
    """Proof that ``identity`` decides, as the CLI signs it: the key in the host's $MLOPS_HOME."""
    return LocalSigner.for_home(host.home, identity)


def trigger_build(
    host: HostClient, params: dict | None = None, requester: str = REQUESTER, build_id: str | None = None
) -> str:
    """Deliver a succeeded MLOps.BuildCompleted requested by ``requester``; the release id."""
    event = build_completed_event("0123456789abcdef", params or {}, build_id, requester=requester)
    host.deliver("on_build_event", [event])
    return release_of(event)


def post_decision(
    host: RunningHost, release_id: str, action: str, body: bytes, *, identity: str | None = APPROVER,
    content_type: str = "application/json", headers: dict[str, str] | None = None,
) -> requests.Response:  # fmt: skip
    """POST .../approve or .../reject as raw bytes, signed as ``identity`` (None: unsigned)."""
    path = release_path(release_id, action)
    sent = {"Content-Type": content_type, **(headers or {})}
    if identity is not None:
        sent |= signed(host, identity)("POST", path, body)
    return requests.post(f"{host.base_url}{path}", data=body, headers=sent, timeout=120)
