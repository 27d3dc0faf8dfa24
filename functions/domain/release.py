"""The Release aggregate: one model's way from a build to production, as a state machine.

Pure: no I/O, no clock (callers pass `now`). Every transition checks the state it starts
from and raises InvalidTransition otherwise, so a handler can never skip a step. States
ending in "-ing" are claimed steps: the handler that saved the claim owns the step, and
reconcile retries it when it stays there too long.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from functions.domain import data_trigger
from functions.domain.approval import same_person
from functions.domain.rollout import step_from_json


class State(StrEnum):
    COLLECTING = "collecting"  # new data: waiting for the debounce window to close (data_trigger.py)
    QUEUED = "queued"  # release created, pipeline not yet submitted
    TRAINING = "training"  # pipeline running: data checks -> train -> evaluate
    REGISTERING = "registering"  # claimed: gate passed, registering and packaging
    PACKAGING = "packaging"  # image build requested, waiting for ImagePushed
    DEPLOYING_STAGING = "deploying_staging"  # claimed: staging deploy + tests
    AWAITING_APPROVAL = "awaiting_approval"
    PROMOTING = "promoting"  # claimed: production deploy + tests
    LIVE = "live"
    REJECTED = "rejected"  # the gate said no (a normal outcome)
    DECLINED = "declined"  # a human said no
    EXPIRED = "expired"  # nobody decided before the deadline
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"  # production tests failed; previous model restored
    SUPERSEDED = "superseded"  # a newer release took its place


FINAL_STATES = frozenset(
    {State.REJECTED, State.DECLINED, State.EXPIRED, State.FAILED, State.ROLLED_BACK, State.SUPERSEDED}
)
AT_REST = FINAL_STATES | {State.AWAITING_APPROVAL, State.LIVE}
# Timeline steps that repeat with each redelivery: counted on the equal entry, not appended.
COUNTED_STEPS = frozenset({"duplicate_event", "stale_event"})


class InvalidTransition(Exception):
    """The release is not in a state that allows this step."""


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


@dataclass
class Release:
    id: str
    state: State
    trigger: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    step_started_at: str = ""
    step_attempts: int = 0
    job: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None
    champion: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    data_checks: dict[str, Any] | None = None  # the pipeline's data checks, summarised (lineage.checks_summary)
    image: dict[str, Any] | None = None
    staging: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None
    production: dict[str, Any] | None = None
    # The long platform step in flight (a deployment coming up, a traffic change): what the timer follows.
    operation: dict[str, Any] | None = None
    error: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    handled_events: list[str] = field(default_factory=list)
    # The host instance whose save last claimed the step ({"instance", "at"}): a claim held by an
    # instance known to be gone is retried at once (service/reconcile.py), not after a timeout.
    claimed_by: dict[str, Any] | None = None
    version: int = 0  # optimistic concurrency: the store's version of this record
    # Set by a transition that moves the claim (a new state, an operation begun or seen to end, a
    # retry); the save stamps claimed_by (stamp_claim) and clears it. Not stored.
    claim_moved: bool = field(default=False, compare=False, repr=False)

    # ---- creation -------------------------------------------------------------------
    @classmethod
    def create(cls, release_id: str, trigger: dict[str, Any], params: dict[str, Any], now: datetime) -> Release:
        release = cls(id=release_id, state=State.QUEUED, trigger=trigger, params=dict(params))
        release.created_at = _iso(now)
        release._moved(now, "created", _describe_trigger(trigger))
        return release

    @classmethod
    def for_rollback(
        cls, release_id: str, target: Release, now: datetime, *, who: dict[str, Any], comment: str, from_release: str
    ) -> Release:
        """A release that puts ``target``'s model and image back in production, without retraining.

        It starts claimed for the promotion (a person asked for it: that is its approval) and goes the way
        every promotion goes: beside the serving deployment, tested directly, only then given traffic.
        It deploys under ``target``'s deployment key, so a deployment kept for rollback is reused."""
        model = (target.candidate or {}).get("model") or {}
        version = f"{model.get('name')}:{model.get('version')}"
        trigger = {"kind": "rollback", "reason": comment, "requestedFor": who.get("name", ""),
                   "from": from_release, "to": target.id, "model": version}  # fmt: skip
        release = cls(id=release_id, state=State.PROMOTING, trigger=trigger)
        release.created_at = _iso(now)
        release.champion = target.champion
        release.candidate = {"model": model, "metrics": (target.candidate or {}).get("metrics") or {}}
        release.gate, release.data_checks = target.gate, target.data_checks
        release.image = dict(target.image or {})
        approval = {**who, "at": _iso(now), "comment": comment}
        release.approval = {"decision": "approved", "by": who.get("name", ""), "comment": comment,
                            "decided_at": _iso(now), "approvals": [approval], "required": 1}  # fmt: skip
        release.production = {"deployment": target.deployment_key}
        detail = f"rollback by {_who(who)} from {from_release or 'nothing'} to {target.id} ({version}): {comment}"
        release._moved(now, "rollback_requested", detail)
        return release

    @classmethod
    def collecting(cls, release_id: str, trigger: dict[str, Any], now: datetime) -> Release:
        """A new-data release whose window is open: blobs join it until the window closes."""
        release = cls(id=release_id, state=State.COLLECTING, trigger=trigger)
        release.created_at = _iso(now)
        window = trigger.get("window") or {}
        release._moved(now, "collecting", f"new data window open until {window.get('closes_at', '?')}")
        return release

    def data_arrived(self, now: datetime, blob: dict[str, Any]) -> None:
        self._require(State.COLLECTING)
        data_trigger.add_blob(self.trigger, blob)
        self.note(now, "data_arrived", f"{blob.get('name')} ({blob.get('size', '?')} bytes)")

    def data_window_closed(self, now: datetime) -> None:
        """The window's end: train on its newest blob (from state collecting to queued)."""
        self._require(State.COLLECTING)
        newest = data_trigger.close(self.trigger)
        count = self.trigger.get("blob_count", 0)
        self._moved(now, "data_window_closed", f"{count} blob(s); training on the newest, {newest}", State.QUEUED)

    # ---- bookkeeping ----------------------------------------------------------------
    def note(self, now: datetime, step: str, detail: str) -> None:
        """Add a timeline entry without changing state (duplicates, stale events...).

        A duplicate or stale event that repeats an entry is counted on it (``count``, ``last_at``) instead
        of appended: the timeline stays readable and the document bounded however often Event Grid
        redelivers, and in whatever order (the whole timeline is searched, newest first)."""
        if step in COUNTED_STEPS:
            for entry in reversed(self.timeline):
                if entry.get("step") == step and entry.get("detail") == detail:
                    entry["count"] = int(entry.get("count", 1)) + 1
                    entry["last_at"] = _iso(now)
                    self.updated_at = _iso(now)
                    return
        self.timeline.append({"at": _iso(now), "step": step, "detail": detail})
        self.updated_at = _iso(now)

    def has_handled(self, event_id: str) -> bool:
        return event_id in self.handled_events

    def mark_handled(self, event_id: str) -> None:
        """Remember the event for duplicate detection (kept for the release's life: some handlers, such as a
        blob joining a data window, rely on it alone). A redelivery adds nothing; each distinct event one id."""
        if event_id not in self.handled_events:
            self.handled_events.append(event_id)

    def stamp_claim(self, instance: str, now: datetime) -> None:
        """Before a save: if a transition moved the claim, ``instance`` (the saver) holds it now."""
        if self.claim_moved:
            self.claimed_by = {"instance": instance, "at": _iso(now)}
            self.claim_moved = False

    def _moved(self, now: datetime, step: str, detail: str, new_state: State | None = None) -> None:
        self.claim_moved = True
        if new_state is not None and new_state != self.state:
            self.state = new_state
            self.step_started_at = _iso(now)
            self.step_attempts = 0
        elif not self.step_started_at:
            self.step_started_at = _iso(now)
        self.note(now, step, detail)

    def _require(self, *states: State) -> None:
        if self.state not in states:
            allowed = " or ".join(s.value for s in states)
            raise InvalidTransition(f"release {self.id} is {self.state.value}, not {allowed}")

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def step_age(self, now: datetime) -> timedelta:
        return now - datetime.fromisoformat(self.step_started_at or self.created_at)

    # ---- transitions ----------------------------------------------------------------
    def training_submitted(self, now: datetime, job_name: str, champion: dict[str, Any] | None) -> None:
        self._require(State.QUEUED)
        self.job = {"name": job_name, "portal_url": ""}
        self.champion = champion
        against = f"champion {champion['name']}:{champion['version']}" if champion else "no champion"
        self._moved(now, "training_submitted", f"pipeline job {job_name} submitted ({against})", State.TRAINING)

    def training_failed(
        self, now: datetime, detail: str, portal_url: str = "", data_checks: dict[str, Any] | None = None
    ) -> None:
        self._require(State.QUEUED, State.TRAINING)
        if self.job is not None:
            self.job["portal_url"] = portal_url
        if data_checks is not None:  # often why it failed: the page shows which check
            self.data_checks = data_checks
        self.fail(now, f"training failed: {detail}" + (f" ({portal_url})" if portal_url else ""))

    def evaluation_started(self, now: datetime) -> None:
        """Claim the gate step after RunCompleted."""
        self._require(State.TRAINING)
        self._moved(now, "run_completed", f"pipeline job {self.job_name} completed", State.REGISTERING)

    def gate_decided(
        self,
        now: datetime,
        decision: dict[str, Any],
        candidate_metrics: dict[str, Any],
        evaluation: dict[str, Any],
        data_checks: dict[str, Any] | None = None,
    ) -> None:
        self._require(State.REGISTERING)
        self.gate = {**decision, "evaluation": evaluation}
        self.data_checks = data_checks
        self.candidate = {**(self.candidate or {}), "metrics": candidate_metrics}
        if decision["promote"]:
            self.note(now, "gate_passed", decision["reason"])
        else:
            self._moved(now, "gate_rejected", decision["reason"], State.REJECTED)

    def packaging_requested(self, now: datetime, model: dict[str, Any], image: dict[str, Any]) -> None:
        self._require(State.REGISTERING)
        self.candidate = {**(self.candidate or {}), "model": model}
        self.image = {**image, "pushed": False}
        registered = f"model {model['name']}:{model['version']} registered"
        requested = f"image {image['repository']}:{image['tag']} requested"
        self._moved(now, "packaging", f"{registered}; {requested}", State.PACKAGING)

    def image_pushed(self, now: datetime, repository: str, tag: str, digest: str) -> None:
        """Claim the staging step."""
        self._require(State.PACKAGING)
        self.image = {**(self.image or {}), "repository": repository, "tag": tag, "digest": digest, "pushed": True}
        self._moved(now, "image_pushed", f"{repository}:{tag} {digest[:19]}", State.DEPLOYING_STAGING)

    def staging_tested(self, now: datetime, endpoint: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        self._require(State.DEPLOYING_STAGING)
        passed = all(r["passed"] for r in reports)
        self.staging = {"endpoint": endpoint, "tests": reports, "passed": passed}
        summary = "; ".join(r["summary"] for r in reports)
        if passed:
            self.note(now, "staging_passed", f"{endpoint['scoring_url']}: {summary}")
        else:
            self.fail(now, f"staging tests failed: {summary}")

    def approval_requested(self, now: datetime, deadline: datetime) -> None:
        self._require(State.DEPLOYING_STAGING)
        self.approval = {"requested_at": _iso(now), "deadline": _iso(deadline), "decision": None}
        self._moved(now, "approval_requested", f"waiting for approval until {_iso(deadline)}", State.AWAITING_APPROVAL)

    def approve(
        self, now: datetime, by: str, comment: str, *, who: dict[str, Any] | None = None, required: int = 1
    ) -> None:
        """One approval; the ``required``-th distinct approver claims the production step.

        ``who`` is the proven principal (name, object id, provider, method); an approver counts once.
        """
        self._require(State.AWAITING_APPROVAL)
        who = who or {"name": by}
        approvals = list((self.approval or {}).get("approvals") or [])
        if any(same_person(who, earlier) for earlier in approvals):
            raise InvalidTransition(f"{by} has approved release {self.id} already")
        approvals.append({**who, "at": _iso(now), "comment": comment})
        self.approval = {**(self.approval or {}), "approvals": approvals, "required": required}
        said = f": {comment}" if comment else ""
        if len(approvals) < required:
            self.note(now, "approval_recorded", f"approved by {_who(who)} ({len(approvals)} of {required}){said}")
            return
        self.approval.update(decision="approved", by=by, comment=comment, decided_at=_iso(now))
        names = ", ".join(_who(a) for a in approvals)
        self._moved(now, "approved", f"approved by {names}" + said, State.PROMOTING)

    def decline(self, now: datetime, by: str, comment: str, *, who: dict[str, Any] | None = None) -> None:
        self._require(State.AWAITING_APPROVAL)
        self.approval = {**(self.approval or {}), "decision": "declined", "by": by, "comment": comment,
                         "decided_at": _iso(now), "declined_by": who or {"name": by}}  # fmt: skip
        self._moved(now, "declined", f"declined by {_who(who or {'name': by})}: {comment}", State.DECLINED)

    def approvals(self) -> list[dict[str, Any]]:
        return list((self.approval or {}).get("approvals") or [])

    def expire(self, now: datetime) -> None:
        self._require(State.AWAITING_APPROVAL)
        self.approval = {**(self.approval or {}), "decision": "expired", "decided_at": _iso(now)}
        self._moved(now, "expired", "no decision before the approval deadline", State.EXPIRED)

    # ---- long platform steps -----------------------------------------------------------
    def operation_started(
        self, now: datetime, operation: dict[str, Any], deadline: datetime, invocation: str, what: str
    ) -> None:
        """A claimed step began a platform operation (``operation``: kind, deployment, handle); the timer
        follows it. The invocation that began it is named, so the timeline shows it did not wait."""
        self._require(State.DEPLOYING_STAGING, State.PROMOTING)
        if self.operation is not None:  # one operation per step at a time: begun again only once it ended
            raise InvalidTransition(f"release {self.id} is following {self.operation.get('what')} already")
        number = 1 + sum(1 for entry in self.timeline if entry["step"] == "operation_started")
        self.operation = {**operation, "number": number, "started_at": _iso(now), "deadline": _iso(deadline),
                          "started_by": invocation, "what": what}  # fmt: skip
        self.step_started_at = _iso(now)  # reconcile's stuck-step clock counts from the last progress
        self.claim_moved = True
        self._entry(now, "operation_started", f"{what}: started, followed by the timer", invocation)

    def operation_finished(self, now: datetime, number: int, state: str, detail: str, invocation: str) -> None:
        """The follower saw operation ``number`` end: saving this is its claim to carry the step on."""
        self._require(State.DEPLOYING_STAGING, State.PROMOTING)
        if self.operation is None or int(self.operation.get("number", 0)) != number:
            raise InvalidTransition(f"release {self.id} is not following operation {number} any more")
        what, began = self.operation.get("what", "operation"), self.operation.get("started_by", "")
        self.operation = None
        self.step_started_at = _iso(now)
        self.claim_moved = True  # saving this is the claim to carry the step on
        said = f": {detail}" if detail else ""
        self._entry(now, f"operation_{state}", f"{what}: {state}{said} (began in {began})", invocation)

    def _entry(self, now: datetime, step: str, detail: str, invocation: str) -> None:
        self.note(now, step, detail)
        self.timeline[-1]["invocation"] = invocation

    def production_direct_tested(self, now: datetime, endpoint: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        """The new production deployment's own tests, before it has any live traffic. Failing them ends the
        release rolled back with nothing moved: the champion keeps all of production's traffic."""
        self._require(State.PROMOTING)
        passed = all(r["passed"] for r in reports)
        summary = "; ".join(r["summary"] for r in reports)
        self.production = {**(self.production or {}), "endpoint": endpoint, "tests": reports, "passed": passed}
        if passed:
            self.note(now, "production_direct_passed", f"{endpoint['scoring_url']} (no live traffic yet): {summary}")
            return
        self.production.update(traffic_moved=False, rolled_back_to=None)
        self.error = f"production tests failed before any traffic moved: {summary}"
        self._moved(now, "rolled_back", f"{self.error}; production unchanged", State.ROLLED_BACK)

    # ---- rollout (functions/domain/rollout.py) --------------------------------------------
    def rollout_planned(self, now: datetime, stable: str, policy: dict[str, Any], described: str) -> None:
        """The steps this release takes production's traffic in, against the ``stable`` deployment."""
        self._require(State.PROMOTING)
        steps = [{**step, "state": "pending"} for step in policy.get("steps") or []]
        rollout = {"stable": stable, "policy": policy, "steps": steps, "step": 0}
        self.production = {**(self.production or {}), "rollout": rollout}
        self.note(now, "rollout_planned", f"{described}, against {stable}")

    @property
    def rollout(self) -> dict[str, Any] | None:
        return (self.production or {}).get("rollout")

    def rollout_step_begun(self, now: datetime, index: int, detail: str) -> None:
        """Step ``index``'s traffic change was begun (the timer follows it)."""
        step = self._rollout_step(index)
        step.update(state="moving", begun_at=_iso(now))
        self._rollout_at(index)
        self.note(now, "rollout_step_begun", f"{_step_label(step)}: {detail}")

    def rollout_step_holding(self, now: datetime, index: int, mark: dict[str, Any]) -> None:
        """Step ``index``'s traffic is in place: its window starts; ``mark`` is where its evidence starts."""
        step = self._rollout_step(index)
        step.update(state="holding", started_at=_iso(now), mark=mark)
        self.note(now, "rollout_step_holding", f"{_step_label(step)}: holding {step['window_s']:g} s and until "
                  f"{step['min_requests']} requests")  # fmt: skip

    def rollout_step_skipped(self, now: datetime, index: int, why: str) -> None:
        step = self._rollout_step(index)
        step.update(state="skipped", reason=why)
        self._rollout_at(index + 1)
        self.note(now, "rollout_step_skipped", f"{_step_label(step)}: {why}")

    def rollout_step_analysed(self, now: datetime, index: int, verdict: dict[str, Any]) -> None:
        """The analysis of step ``index`` decided. Failing it rolls the release back: traffic goes back to
        the stable deployment (the service begins that), the champion never changed."""
        step = self._rollout_step(index)
        passed = bool(verdict.get("passed"))
        step.update(state="passed" if passed else "failed", ended_at=_iso(now), verdict=verdict)
        if passed:  # a retry from here on begins the next step, not this one again
            self._rollout_at(index + 1)
            self.note(now, "rollout_step_passed", str(verdict.get("summary")))
            return
        stable = (self.rollout or {}).get("stable")
        self.production = {**(self.production or {}), "rolled_back_to": stable}
        self.error = f"rollout {verdict.get('summary')}"
        self._moved(now, "rolled_back", f"{self.error}; production traffic goes back to {stable}", State.ROLLED_BACK)

    def _rollout_at(self, index: int) -> None:
        """The step the rollout is at (or goes on with): kept within the steps."""
        rollout = self.rollout
        if rollout is not None:
            rollout["step"] = min(index, len(rollout.get("steps") or [1]) - 1)

    def _rollout_step(self, index: int) -> dict[str, Any]:
        self._require(State.PROMOTING)
        steps = (self.rollout or {}).get("steps") or []
        if not 0 <= index < len(steps):
            raise InvalidTransition(f"release {self.id} has no rollout step {index + 1}")
        step: dict[str, Any] = steps[index]
        return step

    def went_live(self, now: datetime, endpoint: dict[str, Any], traffic: dict[str, int]) -> None:
        """Production's traffic moved to the deployment that passed its direct tests."""
        self._require(State.PROMOTING)
        self.production = {**(self.production or {}), "live_endpoint": endpoint, "traffic": traffic}
        rollout = self.rollout
        if rollout and rollout.get("steps"):  # the last step (all traffic) has nothing to hold for
            rollout["steps"][-1].update(state="passed", ended_at=_iso(now))
            rollout["step"] = len(rollout["steps"]) - 1
        summary = "; ".join(r["summary"] for r in (self.production.get("tests") or []))
        self._moved(now, "live", f"serving at {endpoint['scoring_url']}: {summary}", State.LIVE)

    @property
    def deployment_key(self) -> str:
        """The production deployment this release is served by (a rollback reuses its target's)."""
        return str((self.production or {}).get("deployment") or self.id)

    def supersede(self, now: datetime, by_release: str) -> None:
        self._require(State.AWAITING_APPROVAL, State.LIVE)
        self._moved(now, "superseded", f"superseded by {by_release}", State.SUPERSEDED)

    def fail(self, now: datetime, reason: str) -> None:
        if self.is_final:
            raise InvalidTransition(f"release {self.id} is already {self.state.value}")
        if self.state == State.LIVE:
            raise InvalidTransition(f"release {self.id} is live; it can only be superseded")
        self.error = reason
        self.operation = None
        self._moved(now, "failed", reason, State.FAILED)

    def step_error(self, now: datetime, error: str) -> None:
        """A claimed step raised; reconcile retries it later."""
        self.step_attempts += 1
        self.note(now, "step_error", f"{self.state.value} attempt {self.step_attempts}: {error}")

    def retry_step(self, now: datetime) -> None:
        """Reconcile found the claimed step stuck: count the attempt and restart its clock."""
        self.step_attempts += 1
        self.step_started_at = _iso(now)
        self.claim_moved = True
        self.note(now, "retry", f"{self.state.value} made no progress; attempt {self.step_attempts + 1}")

    # ---- views ----------------------------------------------------------------------
    @property
    def job_name(self) -> str:
        return (self.job or {}).get("name", "")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "trigger": self.trigger,
            "params": self.params,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "step_started_at": self.step_started_at,
            "step_attempts": self.step_attempts,
            "job": self.job,
            "candidate": self.candidate,
            "champion": self.champion,
            "gate": self.gate,
            "data_checks": self.data_checks,
            "image": self.image,
            "staging": self.staging,
            "approval": self.approval,
            "production": self.production,
            "operation": self.operation,
            "error": self.error,
            "timeline": self.timeline,
            "handled_events": self.handled_events,
            "claimed_by": self.claimed_by,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any], *, copy_document: bool = True) -> Release:
        """``copy_document=False`` for a document nobody else holds (fresh from json.loads)."""
        fields = copy.deepcopy(document) if copy_document else dict(document)
        fields["state"] = State(fields["state"])
        fields.setdefault("operation", None)  # records from before operations were kept
        fields.setdefault("claimed_by", None)  # records from before claims named their instance
        return cls(**fields)


def _step_label(step: dict[str, Any]) -> str:
    return f"step {step_from_json(step).label}"


def _who(record: dict[str, Any]) -> str:
    """A recorded principal for the timeline: the name, then how it was proven and the object id."""
    how = [str(record[key]) for key in ("method", "provider", "object_id") if record.get(key)]
    return str(record.get("name", "")) + (f" [{', '.join(how)}]" if how else "")


def _describe_trigger(trigger: dict[str, Any]) -> str:
    if trigger.get("kind") == "build":
        commit = (trigger.get("sourceVersion") or "")[:12]
        system = trigger.get("buildSystem")
        parts = [f"{system + ' ' if system else ''}build {trigger.get('buildNumber') or trigger.get('buildId')}"]
        if commit:
            parts.append(f"commit {commit}")
        if trigger.get("requestedFor"):
            parts.append(f"by {trigger['requestedFor']}")
        if trigger.get("parameters"):
            parts.append(f"parameters {trigger['parameters']}")
        return ", ".join(parts)
    return f"{trigger.get('kind', 'manual')}: {trigger.get('reason', '')}".rstrip(": ")
