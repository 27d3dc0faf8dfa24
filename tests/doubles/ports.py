"""Fakes that implement the orchestrator's ports, for unit tests (no mocks)."""

from __future__ import annotations

import builtins
import copy
import dataclasses
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.domain.events import wire_type
from functions.domain.ids import image_tag
from functions.domain.notifications import Notification
from functions.domain.refs import (
    DeadLetter,
    Endpoint,
    Evidence,
    ImageRef,
    JobStatus,
    ModelRef,
    Operation,
    ParkedEvent,
    Progress,
    TestReport,
    WorkItem,
)
from functions.domain.release import Release
from functions.ports import ConcurrencyError, forgettable_before, utc_iso
from functions.service.context import Ports
from ml_pipeline.evaluate import compare_predictions


def data_checks_report(failed: tuple[str, ...] = ()) -> dict[str, Any]:
    """A data-check report of ml_pipeline.data_checks' shape (its details trimmed)."""
    names = ("schema", "missing_values", "duplicates", "row_count", "value_ranges")
    checks = [
        {"name": name, "passed": name not in failed, "status": "failed" if name in failed else "passed",
         "summary": f"{name} {'out of bounds' if name in failed else 'within bounds'}", "details": {"n": 1}}
        for name in names
    ]  # fmt: skip
    return {"passed": not failed, "failed": list(failed), "data": "diabetes", "reference": None, "n_rows": 442,
            "thresholds": {"min_rows": 50}, "checks": checks}  # fmt: skip


def evaluation_report(candidate_error: float, champion_error: float | None, n: int = 300) -> dict[str, Any]:
    """A real evaluation report for synthetic predictions with the given error scales."""
    rng = np.random.default_rng(5)
    y = rng.normal(150.0, 60.0, size=n)
    noise = rng.normal(0.0, 1.0, size=n)
    champion = None if champion_error is None else y + champion_error * rng.normal(0.0, 1.0, size=n)
    report = compare_predictions(y, y + candidate_error * noise, champion, resamples=200, seed=1)
    report["compared"] = {"data": {"sha256": "ab" * 32}}
    return report


class InMemoryReleaseStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.releases: dict[str, dict[str, Any]] = {}
        self.parked_events: list[tuple[ParkedEvent, dict[str, Any]]] = []
        self._sequence = 0  # cursors of parked events and dead letters, as a store hands them out
        self.letters: list[DeadLetter] = []
        self.work: dict[str, WorkItem] = {}
        self.nonces: dict[str, str] = {}  # spent nonce -> expires_at

    def get(self, release_id: str) -> Release | None:
        with self._lock:
            document = self.releases.get(release_id)
            return Release.from_json(copy.deepcopy(document)) if document else None

    def create(self, release: Release) -> bool:
        with self._lock:
            if release.id in self.releases:
                return False
            release.version = 1
            self.releases[release.id] = copy.deepcopy(release.to_json())
            return True

    def save(self, release: Release) -> None:
        with self._lock:
            stored = self.releases.get(release.id)
            if stored is None or stored["version"] != release.version:
                raise ConcurrencyError(release.id)
            release.version += 1
            self.releases[release.id] = copy.deepcopy(release.to_json())

    def list(self, limit: int = 100, states: Iterable[str] | None = None) -> builtins.list[Release]:
        wanted = set(states or [])
        with self._lock:
            documents = [copy.deepcopy(d) for d in self.releases.values() if not wanted or d["state"] in wanted]
        documents.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
        return [Release.from_json(d) for d in documents[:limit]]

    def park(self, release_id: str, event_id: str, payload: dict[str, Any], parked_at: str) -> None:
        with self._lock:
            if not any(p.release_id == release_id and p.event_id == event_id for p, _ in self.parked_events):
                self._sequence += 1
                event_type = wire_type(payload)
                entry = ParkedEvent(release_id, event_id, event_type, utc_iso(parked_at), f"{self._sequence:020d}")
                self.parked_events.append((entry, copy.deepcopy(payload)))

    def take_parked(self, release_id: str) -> builtins.list[dict[str, Any]]:
        with self._lock:
            taken = [payload for entry, payload in self.parked_events if entry.release_id == release_id]
            self.parked_events = [item for item in self.parked_events if item[0].release_id != release_id]
            return taken

    def parked(self, limit: int = 100, before: str | None = None) -> builtins.list[ParkedEvent]:
        with self._lock:
            entries = [entry for entry, _ in self.parked_events if before is None or entry.cursor < before]
        return builtins.list(reversed(entries))[:limit]

    def parked_before(self, cutoff: str, limit: int = 100) -> builtins.list[tuple[ParkedEvent, dict[str, Any]]]:
        with self._lock:
            found = [(entry, copy.deepcopy(p)) for entry, p in self.parked_events if entry.parked_at < utc_iso(cutoff)]
        return sorted(found, key=lambda item: (item[0].parked_at, item[0].cursor))[:limit]

    def unpark(self, release_id: str, event_id: str) -> bool:
        with self._lock:
            kept = [
                item for item in self.parked_events if (item[0].release_id, item[0].event_id) != (release_id, event_id)
            ]
            removed = len(kept) != len(self.parked_events)
            self.parked_events = kept
            return removed

    def add_dead_letter(self, letter: DeadLetter) -> bool:
        with self._lock:
            if any(x.event_id == letter.event_id and x.function == letter.function for x in self.letters):
                return False
            self._sequence += 1
            self.letters.append(dataclasses.replace(letter, cursor=f"{self._sequence:020d}"))
            return True

    def dead_letters(self, limit: int = 100, before: str | None = None) -> builtins.list[DeadLetter]:
        with self._lock:
            letters = [letter for letter in self.letters if before is None or letter.cursor < before]
        return builtins.list(reversed(letters))[:limit]

    # ---- the outbox -------------------------------------------------------------------
    def add_work(self, item: WorkItem) -> bool:
        with self._lock:
            if item.key in self.work:
                return False
            self.work[item.key] = dataclasses.replace(item, payload=copy.deepcopy(item.payload), version=1)
            return True

    def due_work(self, now: str, limit: int = 100) -> builtins.list[WorkItem]:
        with self._lock:
            due = [item for item in self.work.values() if item.due_at <= now]
        return _earliest_first(due, limit)

    def claim_work(self, item: WorkItem, lease_until: str) -> WorkItem | None:
        with self._lock:
            stored = self.work.get(item.key)
            if stored is None or stored.version != item.version:
                return None  # changed or finished by another worker since it was loaded
            claimed = dataclasses.replace(
                stored, due_at=lease_until, attempts=stored.attempts + 1, version=stored.version + 1
            )
            self.work[item.key] = claimed
        return _copy(claimed)

    def retry_work(self, item: WorkItem, due_at: str, error: str) -> None:
        with self._lock:
            stored = self.work.get(item.key)
            if stored is not None and stored.version == item.version:  # a stale retry changes nothing
                self.work[item.key] = dataclasses.replace(
                    stored, due_at=due_at, last_error=error, version=stored.version + 1
                )

    def finish_work(self, item: WorkItem) -> bool:
        with self._lock:
            stored = self.work.get(item.key)
            if stored is None or stored.version != item.version:
                return False
            del self.work[item.key]
            return True

    def pending_work(self, release_id: str | None = None, limit: int = 100) -> builtins.list[WorkItem]:
        with self._lock:
            pending = [item for item in self.work.values() if release_id is None or item.release_id == release_id]
        return _earliest_first(pending, limit)

    # ---- single-use tokens --------------------------------------------------------------
    def spend_nonce(self, nonce: str, expires_at: str) -> bool:
        expires_at = utc_iso(expires_at)
        before = forgettable_before(expires_at)
        with self._lock:
            if nonce in self.nonces:
                return False
            self.nonces = {n: at for n, at in self.nonces.items() if at >= before}
            self.nonces[nonce] = expires_at
            return True

    def nonce_spent(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self.nonces


def _copy(item: WorkItem) -> WorkItem:
    return dataclasses.replace(item, payload=copy.deepcopy(item.payload))


def _earliest_first(items: Iterable[WorkItem], limit: int) -> list[WorkItem]:
    return [_copy(item) for item in sorted(items, key=lambda item: (item.due_at, item.key))[:limit]]


@dataclass
class Calls:
    log: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, *call: str) -> None:
        self.log.append(call)

    def count(self, name: str) -> int:
        return sum(1 for call in self.log if call[0] == name)


class FakeTraining:
    def __init__(self, calls: Calls, report: dict[str, Any] | None = None) -> None:
        self.calls = calls
        self.report = report or evaluation_report(40.0, None)
        self.checks = data_checks_report()
        self.status_by_job: dict[str, JobStatus] = {}
        self.fail_submit = False

    def submit(self, release_id: str, build: dict, params: dict, champion: ModelRef | None) -> str:
        if self.fail_submit:
            raise RuntimeError("compute cluster unavailable")
        self.calls.add("submit", release_id)
        return f"job-{release_id}"

    def status(self, job_name: str) -> JobStatus:
        return self.status_by_job.get(job_name, JobStatus("running", portal_url=f"https://ml.example/{job_name}"))

    def evaluation(self, job_name: str) -> dict[str, Any]:
        return copy.deepcopy(self.report)

    def model_location(self, job_name: str) -> str:
        return f"/jobs/{job_name}/model"

    def data_checks(self, job_name: str) -> dict[str, Any]:
        return copy.deepcopy(self.checks)


class FakeRegistry:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.by_release: dict[str, ModelRef] = {}
        self.current: ModelRef | None = None

    def register(self, release_id: str, job_name: str, location: str, tags: dict[str, str]) -> ModelRef:
        self.calls.add("register", release_id)
        if release_id not in self.by_release:
            self.by_release[release_id] = ModelRef("diabetes-model", "1", location, tags)
        return self.by_release[release_id]

    def champion(self) -> ModelRef | None:
        return self.current

    def set_champion(self, model: ModelRef) -> None:
        self.calls.add("set_champion", model.version)
        self.current = model

    def find(self, name: str, version: str) -> ModelRef | None:
        known = [m for m in self.by_release.values() if (m.name, m.version) == (name, version)]
        return known[0] if known else None


class FakeImages:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.pushed: dict[str, ImageRef] = {}

    def build(self, release_id: str, model: ModelRef) -> ImageRef:
        self.calls.add("build", release_id)
        return ImageRef("diabetes-scoring", image_tag(model.version, release_id), "", f"/images/{release_id}")

    def lookup(self, repository: str, tag: str) -> ImageRef | None:
        return self.pushed.get(tag)


class FakeDeployer:
    """The Deployer port in memory. Operations finish on the first ``follow`` unless ``hold`` is set
    (then they run until ``settle()``); kinds or keys in ``failing`` fail when followed."""

    PRODUCTION_URL = "http://127.0.0.1:5101/score"

    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.deployed: dict[str, ImageRef] = {}  # production deployments by key
        self.weights: dict[str, int] = {}
        self.mirror: dict[str, int] = {}
        self.mirrors = True  # can_mirror(): False plays an AKS endpoint
        self.hold = False
        self.settled: set[int] = set()
        self.failing: set[str] = set()
        self._begun: list[Operation] = []

    def begin_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Operation:
        self.calls.add("begin_staging", release_id)
        return self._begun_op("staging", release_id)

    def remove_staging(self, release_id: str) -> None:
        self.calls.add("remove_staging", release_id)

    def begin_beside(self, deployment: str, image: ImageRef, model: ModelRef) -> Operation:
        self.calls.add("begin_beside", deployment)
        self.deployed[deployment] = image
        return self._begun_op("beside", deployment)

    def direct(self, deployment: str) -> Endpoint:
        return Endpoint(f"production-{deployment}", f"http://127.0.0.1:9/{deployment}/score", deployment)

    def begin_traffic(self, weights: dict[str, int], mirror: dict[str, int] | None = None) -> Operation:
        shown = ",".join(f"{k}={v}" for k, v in sorted(weights.items()))
        self.calls.add("begin_traffic", shown + "".join(f" mirror {k}={v}" for k, v in (mirror or {}).items()))
        unknown = (set(weights) | set(mirror or {})) - set(self.deployed)
        if unknown or sum(weights.values()) != 100:
            raise ValueError(f"bad traffic {weights} (unknown: {sorted(unknown)})")
        if mirror and not self.mirrors:
            raise ValueError("this production cannot mirror")
        self.weights = {k: v for k, v in weights.items() if v}
        self.mirror = dict(mirror or {})
        return self._begun_op("traffic", max(weights, key=lambda k: weights[k]))

    def can_mirror(self) -> bool:
        return self.mirrors

    def traffic(self) -> dict[str, int]:
        return dict(self.weights)

    def deployments(self) -> list[str]:
        return list(self.deployed)

    def remove(self, deployment: str) -> None:
        self.calls.add("remove", deployment)
        if self.weights.get(deployment):
            raise RuntimeError(f"{deployment} still has traffic")
        self.deployed.pop(deployment, None)

    def follow(self, operation: Operation) -> Progress:
        self.calls.add("follow", operation.kind)
        number = int(operation.handle["n"])
        if self.hold and number not in self.settled:
            return Progress("running", f"{operation.kind} {operation.deployment} in progress")
        if operation.kind in self.failing or operation.deployment in self.failing:
            return Progress("failed", f"{operation.kind} {operation.deployment} failed")
        if operation.kind == "staging":
            key = operation.deployment
            return Progress("succeeded", "up", Endpoint(f"staging-{key}", f"http://127.0.0.1:9/{key}/score", key))
        if operation.kind == "beside":
            return Progress("succeeded", "up", self.direct(operation.deployment))
        return Progress("succeeded", "routed", self.production_endpoint())

    def production_endpoint(self) -> Endpoint:
        serving = max(self.weights, key=lambda k: self.weights[k]) if self.weights else ""
        return Endpoint("production", self.PRODUCTION_URL, serving)

    def settle(self) -> None:
        """Every operation begun so far has finished (a later follow sees it end)."""
        self.settled.update(int(op.handle["n"]) for op in self._begun)

    def _begun_op(self, kind: str, key: str) -> Operation:
        operation = Operation(kind, key, {"n": len(self._begun) + 1})
        self._begun.append(operation)
        return operation


class FakeEvidence:
    """ProductionEvidence from what a test says each deployment served (``serve``); marks count reads."""

    def __init__(self) -> None:
        self.evidence = Evidence(source="fake")
        self.marks = 0
        self.reads: list[tuple[dict[str, Any], list[str]]] = []
        self.broken = False

    def serve(self, evidence: Evidence) -> None:
        self.evidence = evidence

    def mark(self) -> dict[str, Any]:
        self.marks += 1
        return {"n": self.marks}

    def since(self, mark: dict[str, Any], deployments: list[str]) -> Evidence:
        if self.broken:
            raise RuntimeError("evidence store unreachable")
        self.reads.append((mark, list(deployments)))
        return self.evidence


class FakeTester:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.failing_urls: set[str] = set()

    def smoke(self, endpoint: Endpoint) -> TestReport:
        self.calls.add("smoke", endpoint.name)
        return self._report("smoke", endpoint)

    def integration(self, endpoint: Endpoint, model: ModelRef) -> TestReport:
        self.calls.add("integration", endpoint.name)
        return self._report("integration", endpoint)

    def _report(self, name: str, endpoint: Endpoint) -> TestReport:
        passed = endpoint.name not in self.failing_urls
        return TestReport(passed, f"{name} {'passed' if passed else 'failed'}", [{"name": name, "passed": passed}])


def as_message(notification: Notification) -> tuple[str, str, str]:
    """(release id, title, summary and facts as text): what a test reads of a notification."""
    facts = "\n".join(f"{fact.name}: {fact.value}" for fact in notification.facts)
    return notification.release_id, notification.title, f"{notification.summary}\n{facts}"


class FakeNotifier:
    """The Notifier port with one target ("chat" unless told), keeping what it was sent."""

    def __init__(self, targets: tuple[str, ...] = ("chat",)) -> None:
        self.names = targets
        self.sent: list[tuple[str, Notification]] = []

    def targets(self) -> list[str]:
        return list(self.names)

    def sends_inline(self, target: str) -> bool:
        return target in self.inline

    inline: frozenset[str] = frozenset({"chat"})

    def send(self, target: str, notification: Notification) -> None:
        self.sent.append((target, notification))

    @property
    def messages(self) -> list[tuple[str, str, str]]:
        return [as_message(notification) for _, notification in self.sent]


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.ids: list[str] = []

    def publish(self, event_type: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
        self.events.append((event_type, subject, data))
        self.ids.append(event_id or f"evt-{len(self.events)}")
        return self.ids[-1]


def fake_ports(calls: Calls) -> Ports:
    """Every port backed by a fake; platform calls are recorded in ``calls``."""
    return Ports(
        store=InMemoryReleaseStore(),
        training=FakeTraining(calls),
        registry=FakeRegistry(calls),
        images=FakeImages(calls),
        deployer=FakeDeployer(calls),
        tester=FakeTester(calls),
        notifier=FakeNotifier(),
        publisher=FakePublisher(),
        evidence=FakeEvidence(),
    )
