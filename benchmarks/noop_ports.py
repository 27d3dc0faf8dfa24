"""Lean no-op platform adapters for the event benchmarks: every port answers at once and does nothing.

They implement functions/ports.py's Protocols with the same naming conventions as tests/fakes.py (job
``job-<release>``, model ``diabetes-model:1``, image tag ``1-<release>``), so the events built by
tests/payloads.py for a release match what the orchestrator expects. Instead of a call log they keep one
counter per (port call, release id), enough to prove each step ran exactly once per release.
"""

from __future__ import annotations

import builtins
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from functions.domain.ids import image_tag
from functions.domain.notifications import Notification
from functions.domain.refs import (
    Endpoint,
    Evidence,
    ImageRef,
    JobStatus,
    ModelRef,
    Operation,
    Progress,
    TestReport,
    WorkItem,
)
from functions.domain.release import Release
from functions.links import Links
from functions.ports import ConcurrencyError
from functions.service.context import Ports
from functions.service.orchestrator import Orchestrator
from platforms.local.store import SqliteReleaseStore

# A fixed clock makes runs comparable: every release gets the same created_at, so which release stays
# awaiting approval (the newest by (created_at, id)) does not depend on when an event happened to arrive.
FIXED_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MODEL_NAME = "diabetes-model"
MODEL_VERSION = "1"
REPOSITORY = "diabetes-scoring"
COUNTED = ("submit", "register", "build", "begin_staging", "remove_staging", "smoke", "integration")


def fixed_clock() -> datetime:
    return FIXED_NOW


@cache
def passing_report() -> dict[str, Any]:
    """A real evaluation report (no champion, so the default gate promotes), computed once."""
    import numpy as np

    from ml_pipeline.evaluate import compare_predictions

    rng = np.random.default_rng(5)
    y = rng.normal(150.0, 60.0, size=300)
    report = compare_predictions(y, y + 40.0 * rng.normal(0.0, 1.0, size=300), None, resamples=200, seed=1)
    report["compared"] = {"data": {"sha256": "ab" * 32}}
    return report


class CallCounts:
    """Thread-safe counters of (call, release id); the host runs handlers in a thread pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, call: str, release_id: str) -> None:
        with self._lock:
            self.counts[(call, release_id)] += 1

    def per_release(self, call: str) -> dict[str, int]:
        with self._lock:
            return {release: n for (name, release), n in self.counts.items() if name == call}

    def to_json(self) -> dict[str, dict[str, int]]:
        return {call: self.per_release(call) for call in COUNTED}


class NoopTraining:
    def __init__(self, calls: CallCounts) -> None:
        self.calls = calls
        self.report = passing_report()

    def submit(self, release_id: str, build: dict[str, Any], params: dict[str, Any], champion: ModelRef | None) -> str:
        self.calls.add("submit", release_id)
        return f"job-{release_id}"

    def status(self, job_name: str) -> JobStatus:
        return JobStatus("completed")

    def evaluation(self, job_name: str) -> dict[str, Any]:
        return self.report  # the orchestrator only reads it

    def model_location(self, job_name: str) -> str:
        return f"/jobs/{job_name}/model"

    def data_checks(self, job_name: str) -> dict[str, Any]:
        return {"passed": True, "failed": [], "checks": []}


class NoopRegistry:
    def __init__(self, calls: CallCounts) -> None:
        self.calls = calls

    def register(self, release_id: str, job_name: str, location: str, tags: dict[str, str]) -> ModelRef:
        self.calls.add("register", release_id)
        return ModelRef(MODEL_NAME, MODEL_VERSION, location, tags)

    def champion(self) -> ModelRef | None:
        return None

    def set_champion(self, model: ModelRef) -> None:
        return None

    def find(self, name: str, version: str) -> ModelRef | None:
        return None


class NoopImages:
    def __init__(self, calls: CallCounts) -> None:
        self.calls = calls

    def build(self, release_id: str, model: ModelRef) -> ImageRef:
        self.calls.add("build", release_id)
        return ImageRef(REPOSITORY, image_tag(model.version, release_id), "", f"/images/{release_id}")

    def lookup(self, repository: str, tag: str) -> ImageRef | None:
        return None


class NoopDeployer:
    """Every operation has finished by the first look (the benchmarks time the service, not a platform)."""

    def __init__(self, calls: CallCounts) -> None:
        self.calls = calls
        self.weights: dict[str, int] = {}

    def begin_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Operation:
        self.calls.add("begin_staging", release_id)
        return Operation("staging", release_id)

    def remove_staging(self, release_id: str) -> None:
        self.calls.add("remove_staging", release_id)

    def begin_beside(self, deployment: str, image: ImageRef, model: ModelRef) -> Operation:
        return Operation("beside", deployment)

    def direct(self, deployment: str) -> Endpoint:
        return Endpoint(f"production-{deployment}", "http://127.0.0.1:9/score", deployment)

    def can_mirror(self) -> bool:
        return True

    def begin_traffic(self, weights: dict[str, int], mirror: dict[str, int] | None = None) -> Operation:
        self.weights = {k: v for k, v in weights.items() if v}
        return Operation("traffic", max(weights, key=lambda k: weights[k]))

    def traffic(self) -> dict[str, int]:
        return dict(self.weights)

    def deployments(self) -> list[str]:
        return list(self.weights)

    def remove(self, deployment: str) -> None:
        return None

    def follow(self, operation: Operation) -> Progress:
        key = operation.deployment
        if operation.kind == "staging":
            return Progress("succeeded", "", Endpoint(f"staging-{key}", f"http://127.0.0.1:9/{key}/score", key))
        return Progress("succeeded", "", self.direct(key) if operation.kind == "beside" else self.production_endpoint())

    def production_endpoint(self) -> Endpoint:
        return Endpoint("production", "http://127.0.0.1:9/score", next(iter(self.weights), ""))


class NoopTester:
    def __init__(self, calls: CallCounts) -> None:
        self.calls = calls

    def smoke(self, endpoint: Endpoint) -> TestReport:
        self.calls.add("smoke", endpoint.version)
        return TestReport(True, "smoke passed", [{"name": "smoke", "passed": True}])

    def integration(self, endpoint: Endpoint, model: ModelRef) -> TestReport:
        self.calls.add("integration", endpoint.version)
        return TestReport(True, "integration passed", [{"name": "integration", "passed": True}])


class NoopNotifier:
    def targets(self) -> list[str]:
        return ["noop"]

    def sends_inline(self, target: str) -> bool:
        return True

    def send(self, target: str, notification: Notification) -> None:
        return None


class NoopPublisher:
    def publish(self, event_type: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
        return event_id or ""


class CountingStore(SqliteReleaseStore):
    """The real SqliteReleaseStore, counting its calls: loads, saves, version conflicts, rows listed, and the
    outbox's adds and claims (a claim another worker won counts as "claim lost")."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._lock = threading.Lock()
        self.ops: Counter[str] = Counter()

    def _count(self, op: str, n: int = 1) -> None:
        with self._lock:
            self.ops[op] += n

    def get(self, release_id: str) -> Release | None:
        self._count("get")
        return super().get(release_id)

    def save(self, release: Release) -> None:
        self._count("save")
        try:
            super().save(release)
        except ConcurrencyError:
            self._count("save conflict")
            raise

    def list(self, limit: int = 100, states: Iterable[str] | None = None) -> builtins.list[Release]:
        releases = super().list(limit, states)
        self._count("list")
        self._count("rows listed", len(releases))
        return releases

    def park(self, release_id: str, event_id: str, payload: dict[str, Any], parked_at: str) -> None:
        self._count("park")
        super().park(release_id, event_id, payload, parked_at)

    def add_work(self, item: WorkItem) -> bool:
        self._count("add_work")
        return super().add_work(item)

    def claim_work(self, item: WorkItem, lease_until: str) -> WorkItem | None:
        self._count("claim_work")
        claimed = super().claim_work(item, lease_until)
        if claimed is None:
            self._count("claim lost")
        return claimed


class NoopEvidence:
    def mark(self) -> dict[str, Any]:
        return {}

    def since(self, mark: dict[str, Any], deployments: list[str]) -> Evidence:
        return Evidence(source="noop")


def noop_orchestrator(store: SqliteReleaseStore) -> tuple[Orchestrator, CallCounts]:
    """An orchestrator over ``store`` with no-op adapters and the fixed clock, and its call counters."""
    calls = CallCounts()
    ports = Ports(
        store=store,
        training=NoopTraining(calls),
        registry=NoopRegistry(calls),
        images=NoopImages(calls),
        deployer=NoopDeployer(calls),
        tester=NoopTester(calls),
        notifier=NoopNotifier(),
        publisher=NoopPublisher(),
        evidence=NoopEvidence(),
    )
    return Orchestrator(ports, links=Links(), clock=fixed_clock), calls
