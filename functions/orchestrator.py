"""handle(event): load the release, decide, call the ports, save. Idempotent.

- An event id is acted on once: duplicates and stale events (for a release that has moved
  on) are noted in the timeline and acknowledged.
- An event that arrives before its release is ready for it (Event Grid does not keep
  order) is parked and replayed when the release catches up.
- Acting is claimed first: the handler saves the release in a claimed state ("registering",
  "deploying_staging", "promoting") under a version check, and only the handler whose save
  won calls the platform. A claimed step that fails or hangs is retried by reconcile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from functions.domain import events as ev
from functions.domain.gate import GatePolicy, decide
from functions.ports import ConcurrencyError, Deployer, EndpointTester, Images, Notifier, Publisher, Registry, ReleaseStore, Training
from functions.domain.refs import DeadLetter, ImageRef, ModelRef
from functions.domain.release import AT_REST, InvalidTransition, Release, State

log = logging.getLogger("mlops.orchestrator")
CONFLICT_RETRIES = 8


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    STALE = "stale"
    PARKED = "parked"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


class NotFound(LookupError):
    pass


class Conflict(Exception):
    """The release is not in a state that allows the request (HTTP 409)."""


@dataclass(frozen=True)
class Timeouts:
    """How long a release may sit in a step before reconcile looks at it again."""

    claimed_step: timedelta = timedelta(minutes=10)
    training_check: timedelta = timedelta(minutes=15)
    training_max: timedelta = timedelta(hours=24)
    packaging_check: timedelta = timedelta(minutes=5)
    packaging_max: timedelta = timedelta(hours=2)
    approval: timedelta = timedelta(hours=72)
    max_step_attempts: int = 3


@dataclass
class Ports:
    store: ReleaseStore
    training: Training
    registry: Registry
    images: Images
    deployer: Deployer
    tester: EndpointTester
    notifier: Notifier
    publisher: Publisher


@dataclass
class Orchestrator:
    ports: Ports
    policy: GatePolicy = field(default_factory=GatePolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    public_url: str = "http://127.0.0.1:7071"
    # Locally the approval request runs the promotion itself; on Azure an AKS rollout outlasts an
    # HTTP request, so the request claims it and MLOps.ReleaseApproved carries it to on_build_event.
    promote_inline: bool = True
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # ---- Event Grid entry point -----------------------------------------------------
    def receive(self, function_name: str, payload: Any) -> Outcome:
        """One delivered event; never raises for a bad event (it is dead-lettered)."""
        if isinstance(payload, dict) and ev.RELEASE_STATE_CHANGED in (payload.get("eventType"), payload.get("type")):
            return Outcome.IGNORED  # our own notification to other systems, echoed back by a catch-all route
        try:
            event = ev.parse_event(payload)
        except ev.InvalidEvent as exc:
            return self._dead_letter(function_name, payload, str(exc))
        expected = ev.FUNCTION_EVENT_TYPES.get(function_name)
        if expected is not None and event.type not in expected:
            return self._dead_letter(function_name, payload, f"{event.type} is not handled by {function_name}")
        return self.handle(event, payload)

    def handle(self, event: ev.DomainEvent, payload: dict[str, Any]) -> Outcome:
        for _ in range(CONFLICT_RETRIES):
            try:
                outcome = self._dispatch(event, payload)
                break
            except ConcurrencyError:
                continue
        else:
            raise ConcurrencyError(f"event {event.id}: release kept changing; Event Grid will redeliver")
        log.info("%s %s (release %s): %s", event.type, event.id, event.release_id, outcome.value)
        if outcome is Outcome.HANDLED and event.release_id:
            self._replay_parked(event.release_id)
        return outcome

    def _dispatch(self, event: ev.DomainEvent, payload: dict[str, Any]) -> Outcome:
        if isinstance(event, ev.BuildCompleted):
            return self._on_build(event)
        if isinstance(event, ev.ReleaseApproved):
            return self._on_release_approved(event, payload)
        if isinstance(event, ev.DriftDetected):
            return self._on_drift(event)
        if isinstance(event, ev.RunFinished):
            return self._on_run_finished(event, payload)
        if isinstance(event, ev.ModelRegistered):
            return self._on_model_registered(event)
        if isinstance(event, ev.ImageEvent):
            if event.type == ev.IMAGE_DELETED:
                return self._on_image_deleted(event)
            return self._on_image_pushed(event, payload)
        return Outcome.IGNORED

    # ---- handlers -------------------------------------------------------------------
    def _on_build(self, event: ev.BuildCompleted) -> Outcome:
        if not event.succeeded:
            log.info("build %s result %s: no release", event.build_id, event.result)
            return Outcome.IGNORED
        return self._start_release(event.release_id, event.id, event.trigger(), dict(event.parameters))

    def _on_release_approved(self, event: ev.ReleaseApproved, payload: dict[str, Any]) -> Outcome:
        release = self._load_for(event, payload)
        if not isinstance(release, Release):
            return release
        if release.state != State.PROMOTING:
            why = f"approval of {release.id} arrived while the release is {release.state.value}"
            return self._note(release, "stale_event", why, Outcome.STALE, event.id)
        release.mark_handled(event.id)
        release.note(self.clock(), "promotion_started", "deploying to production")
        self.ports.store.save(release)  # a redelivery of the same event is now a duplicate
        self._advance(release)
        return Outcome.HANDLED

    def _on_drift(self, event: ev.DriftDetected) -> Outcome:
        release_id = ev.release_id_for_build(f"drift-{event.id}")
        trigger = {"kind": "drift", "reason": f"{event.drift_name} drift {event.drift_coefficient:.3f}"}
        return self._start_release(release_id, event.id, trigger, {})

    def _start_release(self, release_id: str, event_id: str, trigger: dict, params: dict) -> Outcome:
        now = self.clock()
        release = Release.create(release_id, trigger, params, now)
        release.mark_handled(event_id)
        if not self.ports.store.create(release):
            existing = self._get(release_id)
            if existing.has_handled(event_id):
                return self._note(existing, "duplicate_event", f"event {event_id} delivered again", Outcome.DUPLICATE)
            why = f"build event {event_id} for an existing release"
            return self._note(existing, "stale_event", why, Outcome.STALE, event_id)
        self._advance(release)
        return Outcome.HANDLED

    def _on_run_finished(self, event: ev.RunFinished, payload: dict[str, Any]) -> Outcome:
        if not (event.succeeded or event.failed):
            return Outcome.IGNORED  # Running, Queued...: nothing to decide yet
        release = self._load_for(event, payload)
        if not isinstance(release, Release):
            return release
        if release.state == State.QUEUED:
            return self._park(event, payload, release)
        if release.state != State.TRAINING or event.run_id != release.job_name:
            why = f"run {event.run_id} {event.status} while the release is {release.state.value}"
            return self._note(release, "stale_event", why, Outcome.STALE, event.id)
        release.mark_handled(event.id)
        if event.failed:
            detail = str(event.properties.get("error") or event.properties.get("failed_step") or event.status)
            release.training_failed(self.clock(), detail, self.ports.training.status(event.run_id).portal_url)
            self.ports.store.save(release)
            self._announce(release)
            return Outcome.HANDLED
        release.evaluation_started(self.clock())
        self.ports.store.save(release)  # the claim: only one handler gets past this line
        self._advance(release)
        return Outcome.HANDLED

    def _on_model_registered(self, event: ev.ModelRegistered) -> Outcome:
        release_id = event.release_id
        release = self.ports.store.get(release_id) if release_id else None
        if release is None:
            return Outcome.IGNORED  # a model registered outside a release
        if release.has_handled(event.id):
            return self._note(release, "duplicate_event", f"event {event.id} delivered again", Outcome.DUPLICATE)
        release.mark_handled(event.id)
        detail = f"registry confirmed {event.model_name}:{event.model_version}"
        return self._note(release, "model_registered", detail, Outcome.HANDLED)

    def _on_image_pushed(self, event: ev.ImageEvent, payload: dict[str, Any]) -> Outcome:
        release = self._load_for(event, payload)
        if not isinstance(release, Release):
            return release
        if release.state in (State.QUEUED, State.TRAINING, State.REGISTERING):
            return self._park(event, payload, release)
        expected_tag = (release.image or {}).get("tag")
        if release.state != State.PACKAGING or event.tag != expected_tag:
            why = f"image {event.repository}:{event.tag} pushed while the release is {release.state.value}"
            return self._note(release, "stale_event", why, Outcome.STALE, event.id)
        release.mark_handled(event.id)
        release.image_pushed(self.clock(), event.repository, event.tag, event.digest)
        self.ports.store.save(release)  # claim the staging step
        self._advance(release)
        return Outcome.HANDLED

    def _on_image_deleted(self, event: ev.ImageEvent) -> Outcome:
        release_id = event.release_id
        release = self.ports.store.get(release_id) if release_id else None
        if release is None:
            return Outcome.IGNORED
        if release.has_handled(event.id):
            return self._note(release, "duplicate_event", f"event {event.id} delivered again", Outcome.DUPLICATE)
        release.mark_handled(event.id)
        ours = (release.image or {}).get("tag") == event.tag
        if ours and release.state == State.AWAITING_APPROVAL:
            release.fail(self.clock(), f"image {event.repository}:{event.tag} was deleted before approval")
            self.ports.store.save(release)
            self._announce(release)
            return Outcome.HANDLED
        return self._note(release, "image_deleted", f"{event.repository}:{event.tag or event.digest}", Outcome.HANDLED)

    # ---- HTTP commands --------------------------------------------------------------
    def get_release(self, release_id: str) -> Release:
        release = self.ports.store.get(release_id)
        if release is None:
            raise NotFound(f"no release {release_id}")
        return release

    def approve(self, release_id: str, by: str, comment: str = "") -> Release:
        def claim(release: Release) -> None:
            promoting = [r.id for r in self.ports.store.list(states=[State.PROMOTING.value]) if r.id != release_id]
            if promoting:
                raise Conflict(f"release {promoting[0]} is being promoted to production; approve when it is done")
            release.approve(self.clock(), by, comment)

        release = self._command(release_id, claim)
        if self.promote_inline:
            self._advance(release)
            return self.get_release(release_id)
        try:
            self.ports.publisher.publish(ev.RELEASE_APPROVED, f"releases/{release_id}", {"releaseId": release_id})
        except Exception:  # the claim stands: reconcile retries a promotion that never started
            log.exception("release %s: could not publish its approval; reconcile will promote it", release_id)
        return release

    def decline(self, release_id: str, by: str, comment: str) -> Release:
        def decline(release: Release) -> None:
            release.decline(self.clock(), by, comment)

        release = self._command(release_id, decline)
        self._announce(release)
        return release

    def _command(self, release_id: str, mutate: Callable[[Release], None]) -> Release:
        for _ in range(CONFLICT_RETRIES):
            release = self.get_release(release_id)
            try:
                mutate(release)
            except InvalidTransition as exc:
                raise Conflict(str(exc)) from None
            try:
                self.ports.store.save(release)
                return release
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"release {release_id} kept changing; try again")

    # ---- steps ----------------------------------------------------------------------
    def _advance(self, release: Release) -> None:
        """Run the step the release is claimed for; errors are recorded for reconcile to retry."""
        step = {
            State.QUEUED: self._submit_training,
            State.REGISTERING: self._gate_and_package,
            State.DEPLOYING_STAGING: self._deploy_staging,
            State.PROMOTING: self._promote,
        }.get(release.state)
        if step is None:
            return
        state = release.state
        try:
            step(release)
        except Exception as exc:  # a platform error must not strand the event in a retry storm
            log.exception("release %s: step %s failed", release.id, state.value)
            self._step_error(release.id, state, f"{type(exc).__name__}: {exc}")

    def _submit_training(self, release: Release) -> None:
        champion = self.ports.registry.champion()
        job = self.ports.training.submit(release.id, release.trigger, release.params, champion)
        champion_json = asdict(champion) if champion else None
        self._update(release, State.QUEUED, lambda r: r.training_submitted(self.clock(), job, champion_json))

    def _gate_and_package(self, release: Release) -> None:
        evaluation = self.ports.training.evaluation(release.job_name)
        decision = decide(evaluation, self.policy).to_json()
        candidate_metrics = (evaluation.get("metrics") or {}).get("candidate") or {}
        summary = _evaluation_summary(evaluation)
        if not decision["promote"]:
            updated = self._update(
                release, State.REGISTERING, lambda r: r.gate_decided(self.clock(), decision, candidate_metrics, summary)
            )
            self._announce(updated)
            return
        location = self.ports.training.model_location(release.job_name)
        model = self.ports.registry.register(release.id, release.job_name, location, _lineage_tags(release, evaluation))
        image = self.ports.images.build(release.id, model)

        def record(r: Release) -> None:
            r.gate_decided(self.clock(), decision, candidate_metrics, summary)
            r.packaging_requested(self.clock(), asdict(model), asdict(image))

        self._update(release, State.REGISTERING, record)

    def _deploy_staging(self, release: Release) -> None:
        model, image = model_of(release), image_of(release)
        endpoint = self.ports.deployer.deploy_staging(release.id, image, model)
        reports = [asdict(self.ports.tester.smoke(endpoint)), asdict(self.ports.tester.integration(endpoint, model))]
        now = self.clock()
        deadline = now + self.timeouts.approval

        def record(r: Release) -> None:
            r.staging_tested(now, asdict(endpoint), reports)
            if r.state == State.DEPLOYING_STAGING:
                r.approval_requested(now, deadline)

        updated = self._update(release, State.DEPLOYING_STAGING, record)
        if updated.state == State.AWAITING_APPROVAL:
            updated = self._keep_newest_candidate(updated)
        if updated.state == State.AWAITING_APPROVAL:
            approve_url = f"{self.public_url}/api/releases/{updated.id}/approve"
            self.ports.notifier.notify(
                updated.id,
                f"approval requested for {updated.id}",
                f"staging {endpoint.scoring_url} passed its tests; approve with: curl -X POST {approve_url} "
                "-H 'Content-Type: application/json' -d '{\"by\": \"you@example.com\"}'",
            )
        self._announce(updated)

    def _promote(self, release: Release) -> None:
        model, image = model_of(release), image_of(release)
        endpoint = self.ports.deployer.deploy_production(release.id, image, model)
        reports = [asdict(self.ports.tester.smoke(endpoint)), asdict(self.ports.tester.integration(endpoint, model))]
        rolled_back_to = None
        if all(r["passed"] for r in reports):
            self.ports.registry.set_champion(model)
        else:
            previous = self.ports.deployer.rollback_production(release.id)
            rolled_back_to = previous.version if previous else None
        now = self.clock()
        updated = self._update(
            release, State.PROMOTING, lambda r: r.production_tested(now, asdict(endpoint), reports, rolled_back_to)
        )
        if updated.state == State.LIVE:
            self._supersede_others(updated, State.LIVE)
            self.ports.deployer.remove_staging(updated.id)
        self._announce(updated)

    # ---- reconcile (timer) ----------------------------------------------------------
    def reconcile(self) -> dict[str, int]:
        """Expire approvals, re-check stuck steps against the platform, retry claimed steps."""
        counts = {"expired": 0, "rechecked": 0, "retried": 0, "failed": 0, "errors": 0}
        now = self.clock()
        open_states = [s.value for s in State if s not in AT_REST] + [State.AWAITING_APPROVAL.value]
        for release in self.ports.store.list(limit=1000, states=open_states):
            try:
                counts_key = self._reconcile_one(release, now)
            except ConcurrencyError:
                continue  # someone else is working on it right now
            except Exception:  # one broken release must not stop the pass for the others
                log.exception("reconcile: release %s", release.id)
                counts_key = "errors"
            if counts_key:
                counts[counts_key] += 1
        return counts

    def _reconcile_one(self, release: Release, now: datetime) -> str | None:
        age, t = release.step_age(now), self.timeouts
        if release.state == State.AWAITING_APPROVAL:
            deadline = datetime.fromisoformat((release.approval or {}).get("deadline") or release.step_started_at)
            if now < deadline:
                return None
            updated = self._update(release, State.AWAITING_APPROVAL, lambda r: r.expire(now))
            self._announce(updated)
            return "expired"
        if release.state == State.TRAINING and age >= t.training_check:
            return self._recheck_training(release, now, age)
        if release.state == State.PACKAGING and age >= t.packaging_check:
            return self._recheck_packaging(release, now, age)
        if release.state in (State.QUEUED, State.REGISTERING, State.DEPLOYING_STAGING, State.PROMOTING):
            if age < t.claimed_step:
                return None
            if release.step_attempts >= t.max_step_attempts:
                reason = f"step {release.state.value} did not finish after {release.step_attempts} attempts"
                self._fail(release, reason)
                return "failed"
            release.retry_step(now)
            self.ports.store.save(release)  # the claim; a concurrent pass gets ConcurrencyError and skips
            self._advance(release)
            return "retried"
        return None

    def _recheck_training(self, release: Release, now: datetime, age: timedelta) -> str:
        status = self.ports.training.status(release.job_name)
        if status.state == "completed":
            self._update(release, State.TRAINING, lambda r: r.evaluation_started(now))
            self._advance(self._get(release.id))
            return "rechecked"
        if status.state in ("failed", "canceled", "unknown") or age >= self.timeouts.training_max:
            detail = status.detail or f"job {status.state} after {age}"
            updated = self._update(release, State.TRAINING, lambda r: r.training_failed(now, detail, status.portal_url))
            self._announce(updated)
            return "failed"
        return "rechecked"

    def _recheck_packaging(self, release: Release, now: datetime, age: timedelta) -> str:
        image = release.image or {}
        found = self.ports.images.lookup(image.get("repository", ""), image.get("tag", ""))
        if found is not None:
            self._update(
                release, State.PACKAGING, lambda r: r.image_pushed(now, found.repository, found.tag, found.digest)
            )
            self._advance(self._get(release.id))
            return "rechecked"
        if age >= self.timeouts.packaging_max:
            self._fail(release, f"image {image.get('repository')}:{image.get('tag')} never arrived")
            return "failed"
        return "rechecked"

    # ---- helpers --------------------------------------------------------------------
    def _get(self, release_id: str) -> Release:
        return self.get_release(release_id)

    def _load_for(self, event: ev.DomainEvent, payload: dict[str, Any]) -> Release | Outcome:
        """The event's release, or the outcome when there is nothing to act on."""
        release_id = event.release_id
        if not release_id:
            return Outcome.IGNORED  # not started by this orchestrator (no release tag)
        release = self.ports.store.get(release_id)
        if release is None:
            return self._park(event, payload, None)
        if release.has_handled(event.id):
            return self._note(release, "duplicate_event", f"event {event.id} delivered again", Outcome.DUPLICATE)
        return release

    def _park(self, event: ev.DomainEvent, payload: dict[str, Any], seen: Release | None) -> Outcome:
        """Keep an early event. If the release moved while we parked, the handler that moved it
        may already have replayed the parked events, so replay them here too."""
        assert event.release_id
        self.ports.store.park(event.release_id, event.id, payload)
        current = self.ports.store.get(event.release_id)
        if current is not None and (seen is None or current.version != seen.version):
            self._replay_parked(event.release_id)
        return Outcome.PARKED

    def _replay_parked(self, release_id: str) -> None:
        for payload in self.ports.store.take_parked(release_id):
            try:
                self.handle(ev.parse_event(payload), payload)
            except Exception:  # keep it for the next replay rather than lose it
                log.exception("release %s: replaying parked event %s failed", release_id, payload.get("id"))
                self.ports.store.park(release_id, str(payload.get("id")), payload)

    def _note(self, release: Release, step: str, detail: str, outcome: Outcome, event_id: str = "") -> Outcome:
        """Record without acting; an event id given is marked handled, so a redelivery is a plain duplicate."""
        if event_id:
            release.mark_handled(event_id)
        release.note(self.clock(), step, detail)
        self.ports.store.save(release)
        return outcome

    def _update(self, release: Release, expected: State, mutate: Callable[[Release], None]) -> Release:
        """Apply a transition to a copy and save it; on a concurrent note, reload and apply it again."""
        current = Release.from_json(release.to_json())
        for _ in range(CONFLICT_RETRIES):
            if current.state != expected:
                raise ConcurrencyError(f"release {release.id} moved to {current.state.value}")
            mutate(current)
            try:
                self.ports.store.save(current)
                return current
            except ConcurrencyError:
                current = self._get(release.id)
        raise ConcurrencyError(f"release {release.id} kept changing")

    def _step_error(self, release_id: str, state: State, error: str) -> None:
        try:
            release = self._get(release_id)
            updated = self._update(release, state, lambda r: r.step_error(self.clock(), error))
        except ConcurrencyError:
            return
        if updated.step_attempts >= self.timeouts.max_step_attempts:
            self._fail(updated, f"step {state.value} failed {updated.step_attempts} times; last error: {error}")

    def _fail(self, release: Release, reason: str) -> None:
        if release.state == State.PROMOTING:  # do not leave a half-promoted model serving
            previous = self.ports.deployer.rollback_production(release.id)
            reason += f"; production rolled back to {previous.version}" if previous else ""
        updated = self._update(release, release.state, lambda r: r.fail(self.clock(), reason))
        self._announce(updated)

    def _supersede_others(self, release: Release, state: State) -> None:
        for other in self.ports.store.list(limit=1000, states=[state.value]):
            if other.id != release.id:
                self._supersede(other, state, release.id)

    def _keep_newest_candidate(self, release: Release) -> Release:
        """Only the newest release awaits approval: older ones are superseded, and so is this
        one when a newer release got there first (its events arrived earlier)."""
        for other in self.ports.store.list(limit=1000, states=[State.AWAITING_APPROVAL.value]):
            if other.id == release.id:
                continue
            if (other.created_at, other.id) < (release.created_at, release.id):
                self._supersede(other, State.AWAITING_APPROVAL, release.id)
            else:
                self._supersede(release, State.AWAITING_APPROVAL, other.id)
                return self._get(release.id)
        return release

    def _supersede(self, release: Release, state: State, by_release: str) -> None:
        try:
            self._update(release, state, lambda r: r.supersede(self.clock(), by_release))
        except ConcurrencyError:
            return
        if state == State.AWAITING_APPROVAL:
            self.ports.deployer.remove_staging(release.id)

    def _announce(self, release: Release) -> None:
        """Tell subscribers (MLOps.ReleaseStateChanged) and people (notifier) about a state change;
        a release that is over gives back its staging endpoint."""
        if release.is_final:
            try:
                self.ports.deployer.remove_staging(release.id)
            except Exception:
                log.exception("release %s: could not remove its staging endpoint", release.id)
        data = {"releaseId": release.id, "state": release.state.value, "error": release.error}
        try:
            self.ports.publisher.publish(ev.RELEASE_STATE_CHANGED, f"releases/{release.id}", data)
        except Exception:
            log.exception("release %s: could not publish its state change", release.id)
        if release.state in (State.REJECTED, State.FAILED, State.ROLLED_BACK, State.LIVE, State.EXPIRED):
            detail = release.error or (release.gate or {}).get("reason") or release.timeline[-1]["detail"]
            self.ports.notifier.notify(release.id, f"release {release.id} is {release.state.value}", detail)

    def _dead_letter(self, function_name: str, payload: Any, reason: str) -> Outcome:
        event_id = str(payload.get("id")) if isinstance(payload, dict) and payload.get("id") else "(no id)"
        event_type = ""
        if isinstance(payload, dict):
            event_type = str(payload.get("eventType") or payload.get("type") or "")
        letter = DeadLetter(event_id, event_type, function_name, reason, self.clock().isoformat(), payload)
        self.ports.store.add_dead_letter(letter)
        log.warning("dead-lettered event %s for %s: %s", event_id, function_name, reason)
        return Outcome.DEAD_LETTERED


def model_of(release: Release) -> ModelRef:
    model = (release.candidate or {}).get("model") or {}
    return ModelRef(model["name"], str(model["version"]), model["location"], dict(model.get("tags") or {}))


def image_of(release: Release) -> ImageRef:
    image = release.image or {}
    return ImageRef(image["repository"], image["tag"], image.get("digest", ""), image.get("location", ""))


def _lineage_tags(release: Release, evaluation: dict[str, Any]) -> dict[str, str]:
    trigger = release.trigger
    metrics = (evaluation.get("metrics") or {}).get("candidate") or {}
    tags = {
        "release_id": release.id,
        "build_id": str(trigger.get("buildId") or ""),
        "commit": str(trigger.get("sourceVersion") or ""),
        "job": release.job_name,
        "data_sha256": str(((evaluation.get("compared") or {}).get("data") or {}).get("sha256") or ""),
    }
    tags.update({f"metric_{name}": f"{value:.6g}" for name, value in metrics.items()})
    return tags


def _evaluation_summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the release keeps of the evaluation report: the numbers, not the whole document."""
    keep = ("n", "metrics", "differences", "note", "bootstrap")
    summary = {key: evaluation.get(key) for key in keep if key in evaluation}
    compared = evaluation.get("compared") or {}
    summary["compared"] = {k: compared.get(k) for k in ("candidate", "champion", "holdout") if k in compared}
    return summary
