"""Every setting the app reads, read in one place. A bad value fails at start-up, naming it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from functions.domain.approval import ApprovalConfigError, ApprovalPolicy
from functions.domain.data_trigger import LOCAL_CONTAINER, DataTrigger, DataTriggerError
from functions.domain.gate import GateConfigError, GatePolicy
from functions.domain.notifications import TARGET_FORMATS
from functions.domain.rollout import RolloutConfigError, RolloutPolicy
from ml_pipeline.dataset import TASKS, default_task

PLATFORMS = ("local", "azure")
# The reconcile timer's NCRONTAB schedule is the app setting MLOPS_RECONCILE_SCHEDULE (function_app.py
# binds "%MLOPS_RECONCILE_SCHEDULE%"); hosts that find it unset use this default: every minute.
RECONCILE_SCHEDULE_SETTING = "MLOPS_RECONCILE_SCHEDULE"
DEFAULT_RECONCILE_SCHEDULE = "0 * * * * *"
# The follow timer (function_app.py binds "%MLOPS_FOLLOW_SCHEDULE%") looks at the platform operations in
# flight: every 10 seconds unless set (one store query when none is open); the local host uses 2 seconds.
FOLLOW_SCHEDULE_SETTING = "MLOPS_FOLLOW_SCHEDULE"
DEFAULT_FOLLOW_SCHEDULE = "*/10 * * * * *"
LOCAL_FOLLOW_SCHEDULE = "*/2 * * * * *"
# Set by App Service itself when its Authentication is on (not an app setting this app declares).
EASY_AUTH_SETTING = "WEBSITE_AUTH_ENABLED"


NOTIFICATION_TARGETS_SETTING = "MLOPS_NOTIFICATION_TARGETS"
TARGET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Names the platforms use for their own targets (the local file, the Azure topic).
RESERVED_TARGET_NAMES = frozenset({"file", "topic"})


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class WebhookTargetSpec:
    """One entry of MLOPS_NOTIFICATION_TARGETS. The URL is a credential (whoever holds a Teams or Slack
    webhook URL can post to the channel): repr hides it and no message quotes it."""

    name: str
    format: str
    url: str = field(repr=False)


@dataclass(frozen=True)
class HookSecrets:
    """The CI webhooks' credentials (never printed: repr hides them)."""

    ado_user: str = field(default="", repr=False)
    ado_secret: str = field(default="", repr=False)
    github_secret: str = field(default="", repr=False)
    github_workflows: tuple[str, ...] = ()
    generic_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    platform: str = "local"
    home: Path = field(default_factory=lambda: Path(".mlops").resolve())
    host_url: str = "http://127.0.0.1:7071"
    public_url: str = "http://127.0.0.1:7071"
    production_port: int = 5101
    training_data: str = "diabetes"
    # regression or classification (MLOPS_TASK; unset: the built-in data set's task, else regression).
    task: str = "regression"
    # MLOPS_ESTIMATOR: {"estimator": "sklearn.x.Y", "params": {...}}; {} trains the task's default.
    estimator: Mapping[str, Any] = field(default_factory=dict)
    approval_timeout: timedelta = timedelta(hours=72)
    gate_policy: GatePolicy = field(default_factory=GatePolicy)
    approval_policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    rollout_policy: RolloutPolicy = field(default_factory=RolloutPolicy)
    # MLOPS_RETRAIN_SCHEDULE: NCRONTAB (UTC) of scheduled retraining; "" (the default) is off.
    retrain_schedule: str = ""
    # The generic hook: how far a delivery's signed timestamp may be from now (MLOPS_GENERIC_WEBHOOK_TOLERANCE,
    # seconds), and whether its requester counts for the self-approval rule (..._TRUST_REQUESTER).
    generic_webhook_tolerance: timedelta = timedelta(minutes=5)
    trust_generic_requester: bool = False
    # New training data (MLOPS_DATA_CONTAINER, MLOPS_DATA_PREFIX, MLOPS_DATA_DEBOUNCE_SECONDS); None is off.
    data_trigger: DataTrigger | None = None
    # How long an event may wait parked for its release (MLOPS_PARKED_EVENT_TTL_HOURS) before it expires
    # into a dead letter: a day, as long as Event Grid itself retries a delivery.
    parked_event_ttl: timedelta = timedelta(hours=24)
    # The local deployer's fault injection (MLOPS_LOCAL_FAULT, off when empty): docs/rollout.md.
    local_fault: dict[str, Any] = field(default_factory=dict)
    # Test switches of the local platform, off when empty (docs/reliability.md): the host kills itself
    # with SIGKILL right after saving a release's step (MLOPS_LOCAL_CRASH_AFTER), and the local event bus
    # drops, duplicates, delays or reorders a share of its deliveries (MLOPS_LOCAL_EVENT_CHAOS).
    # MLOPS_MISSED_EVENT_CHECK_SECONDS: after how long reconcile asks the platform about a training run or
    # an image whose event has not come (None: Timeouts' own 15 and 5 minutes).
    missed_event_check: timedelta | None = None
    local_crash_after: str = ""
    local_event_chaos: dict[str, Any] = field(default_factory=dict)
    # The environment the settings came from; secrets are read from it on every request (rotation).
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False, compare=False)

    def hook_secrets(self) -> HookSecrets:
        """The hooks' settings as they are now: rotating a secret (Key Vault reference) needs no restart.

        An unresolved Key Vault reference counts as not configured, never as the secret.
        """
        env = self.env
        workflows = (env.get("MLOPS_GITHUB_WORKFLOWS") or "").split(",")
        return HookSecrets(
            ado_user=(env.get("MLOPS_HOOK_USER") or "").strip(),
            ado_secret=_secret(env, "MLOPS_HOOK_SECRET"),
            github_secret=_secret(env, "MLOPS_GITHUB_WEBHOOK_SECRET"),
            github_workflows=tuple(w.strip() for w in workflows if w.strip()),
            generic_secret=_secret(env, "MLOPS_GENERIC_WEBHOOK_SECRET"),
        )

    def github_identities(self) -> dict[str, str]:
        """MLOPS_GITHUB_IDENTITIES as it is now: a JSON object of GitHub login -> the UPN/email (or object id)
        the approval policy compares with approvers. Logins are matched in any case; unset is {}.
        SettingsError, naming the setting, when it is not such an object (the hook answers 503)."""
        return _identities(self.env.get("MLOPS_GITHUB_IDENTITIES"))

    def link_secret(self) -> str:
        """MLOPS_LINK_SECRET, the key of signed action links, as it is now (on Azure a Key Vault reference:
        rotation needs no restart); "" when unset or an unresolved reference."""
        env = self.env
        return _secret(env, "MLOPS_LINK_SECRET")

    def notification_targets(self) -> tuple[WebhookTargetSpec, ...]:
        """MLOPS_NOTIFICATION_TARGETS as it is now (docs/notifications.md): whitespace-separated entries
        FORMAT:URL or NAME=FORMAT:URL. An unresolved Key Vault reference counts as none configured."""
        return _notification_targets(_secret(self.env, "MLOPS_NOTIFICATION_TARGETS"), self.platform)

    def easy_auth_enabled(self) -> bool:
        """App Service Authentication is on: the platform's WEBSITE_AUTH_ENABLED is "True" (any case). Only
        then are X-MS-CLIENT-PRINCIPAL* headers the platform's; otherwise any caller could send them."""
        return (self.env.get(EASY_AUTH_SETTING) or "").strip().lower() == "true"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        platform = env.get("MLOPS_PLATFORM", "local").strip().lower()
        switches_on = _switch_platform(env, platform)  # where the local test switches would run
        if platform not in PLATFORMS:
            raise SettingsError(f"MLOPS_PLATFORM must be one of {', '.join(PLATFORMS)}, got {platform!r}")
        host_url = _url(env, "MLOPS_HOST_URL", "http://127.0.0.1:7071")
        approval_policy = _approval_policy(env.get("MLOPS_APPROVAL_POLICY"), env)
        _notification_targets(_secret(env, "MLOPS_NOTIFICATION_TARGETS"), platform)  # fail at start, not per send
        training_data = env.get("MLOPS_TRAINING_DATA") or "diabetes"
        # On Azure the pipeline trains on AZUREML_TRAINING_DATA: its built-in name implies the task.
        trained_on = (env.get("AZUREML_TRAINING_DATA") or "diabetes") if platform == "azure" else training_data
        task = _task(env.get("MLOPS_TASK"), trained_on)
        return cls(
            platform=platform,
            home=Path(env.get("MLOPS_HOME") or ".mlops").resolve(),
            host_url=host_url,
            public_url=_url(env, "MLOPS_PUBLIC_URL", host_url),
            production_port=_int(env, "MLOPS_PRODUCTION_PORT", 5101, 1, 65535),
            training_data=training_data,
            task=task,
            estimator=_estimator(env.get("MLOPS_ESTIMATOR")),
            approval_timeout=timedelta(hours=approval_policy.deadline_hours),
            gate_policy=_gate_policy(env.get("MLOPS_GATE_POLICY"), task),
            approval_policy=approval_policy,
            rollout_policy=_rollout_policy(env.get("MLOPS_ROLLOUT_POLICY")),
            local_fault=_local_fault(env.get("MLOPS_LOCAL_FAULT"), switches_on),
            # Each check is a platform call per waiting release: at least a minute on Azure.
            missed_event_check=_optional_seconds(
                env, "MLOPS_MISSED_EVENT_CHECK_SECONDS", 60 if platform == "azure" else 1, 86400
            ),
            local_crash_after=_local_crash_after(env.get("MLOPS_LOCAL_CRASH_AFTER"), switches_on),
            local_event_chaos=_local_event_chaos(env.get("MLOPS_LOCAL_EVENT_CHAOS"), switches_on),
            retrain_schedule=_retrain_schedule(env.get("MLOPS_RETRAIN_SCHEDULE")),
            generic_webhook_tolerance=timedelta(seconds=_int(env, "MLOPS_GENERIC_WEBHOOK_TOLERANCE", 300, 10, 3600)),
            trust_generic_requester=_bool(env, "MLOPS_GENERIC_WEBHOOK_TRUST_REQUESTER"),
            data_trigger=data_trigger_from_env(env, platform),
            parked_event_ttl=timedelta(hours=_hours(env, "MLOPS_PARKED_EVENT_TTL_HOURS", 24.0, 0.01, 8760.0)),
            env=env,
        )


def _secret(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    return "" if value.startswith("@Microsoft.KeyVault(") else value


def _notification_targets(raw: str, platform: str) -> tuple[WebhookTargetSpec, ...]:
    specs: list[WebhookTargetSpec] = []
    for number, entry in enumerate(raw.split(), start=1):
        where = f"{NOTIFICATION_TARGETS_SETTING} entry {number}"  # never the entry itself: it holds the URL
        name, equals, rest = entry.partition("=")
        if not equals or "://" in name:  # no NAME= (an "=" may be in the URL's query)
            name, rest = "", entry
        format_name, colon, url = rest.partition(":")
        format_name = format_name.strip().lower()
        if not colon or format_name not in TARGET_FORMATS:
            raise SettingsError(
                f"{where} must be FORMAT:URL or NAME=FORMAT:URL, FORMAT one of {', '.join(TARGET_FORMATS)}"
            )
        _check_target_url(url, where, platform)
        if name and (not TARGET_NAME.fullmatch(name) or name in RESERVED_TARGET_NAMES):
            raise SettingsError(f"{where}: the name must be 1-40 of a-z, 0-9 and '-' (and not file or topic)")
        taken = {spec.name for spec in specs}
        if name in taken:
            raise SettingsError(f"{where}: the name {name!r} is used twice")
        if not name:
            if format_name in taken:  # a position-based name would move pending messages when entries move
                raise SettingsError(f"{where}: a second {format_name} target needs a name (NAME={format_name}:URL)")
            name = format_name
        specs.append(WebhookTargetSpec(name, format_name, url))
    return tuple(specs)


def _check_target_url(url: str, where: str, platform: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise SettingsError(f"{where}: the URL is malformed") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in LOOPBACK_HOSTS and platform == "local":
        return  # a receiver on this machine (tests, a local relay)
    raise SettingsError(f"{where}: the URL must be https (http only to 127.0.0.1 or localhost, locally)")


def _identities(raw: str | None) -> dict[str, str]:
    if not raw or not raw.strip():
        return {}
    problem = "MLOPS_GITHUB_IDENTITIES must be a JSON object of GitHub login -> UPN or email"
    try:
        document: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise SettingsError(f"{problem}; it is not valid JSON") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip() for k, v in document.items()
    ):
        raise SettingsError(problem)
    return {login.strip().lower(): identity.strip() for login, identity in document.items()}


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def data_trigger_from_env(env: Mapping[str, str], platform: str) -> DataTrigger | None:
    """Retraining on new blobs: off on Azure until a container is named; locally on for LOCAL_CONTAINER
    (`mlops trigger data`, the watched folder) unless MLOPS_DATA_CONTAINER is set to "off"."""
    container = (env.get("MLOPS_DATA_CONTAINER") or "").strip()
    if container.lower() == "off" or (not container and platform != "local"):
        return None
    debounce = timedelta(seconds=_int(env, "MLOPS_DATA_DEBOUNCE_SECONDS", 300, 0, 86400))
    try:
        return DataTrigger(container or LOCAL_CONTAINER, (env.get("MLOPS_DATA_PREFIX") or "").strip(), debounce)
    except DataTriggerError as exc:
        raise SettingsError(str(exc)) from None


def _hours(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """A number of hours within [low, high] (a year at most: beyond, times overflow); SettingsError otherwise."""
    value = _float(env, name, default)
    if not low <= value <= high:  # also refuses inf and nan
        raise SettingsError(f"{name} must be between {low:g} and {high:g} hours, got {env.get(name)!r}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _approval_policy(raw: str | None, env: Mapping[str, str]) -> ApprovalPolicy:
    """MLOPS_APPROVAL_POLICY (JSON); its deadline defaults to MLOPS_APPROVAL_TIMEOUT_HOURS (72)."""
    try:
        document: Any = json.loads(raw) if raw and raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise SettingsError(f"MLOPS_APPROVAL_POLICY is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SettingsError("MLOPS_APPROVAL_POLICY must be a JSON object")
    document.setdefault("deadline_hours", _float(env, "MLOPS_APPROVAL_TIMEOUT_HOURS", 72.0))
    try:
        return ApprovalPolicy.from_mapping(document)
    except (ApprovalConfigError, TypeError) as exc:
        raise SettingsError(f"MLOPS_APPROVAL_POLICY: {exc}") from None


def _task(raw: str | None, training_data: str) -> str:
    task = (raw or "").strip().lower() or default_task(training_data)
    if task not in TASKS:
        raise SettingsError(f"MLOPS_TASK must be one of {', '.join(TASKS)}, got {raw!r}")
    return task


def _retrain_schedule(raw: str | None) -> str:
    expression = " ".join((raw or "").split())
    if not expression:
        return ""
    # Imported only when a schedule is set: croniter costs ~40 ms of every cold start otherwise.
    from functions.domain import schedule

    try:
        schedule.validate(expression)
    except ValueError as exc:
        raise SettingsError(f"MLOPS_RETRAIN_SCHEDULE: {exc}") from None
    return expression


PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _estimator(raw: str | None) -> dict[str, Any]:
    """MLOPS_ESTIMATOR's shape; whether the class exists and fits the task is the train step's to say
    (checking here would import scikit-learn into every cold start)."""
    if not raw or not raw.strip():
        return {}
    document = _json_object(raw, "MLOPS_ESTIMATOR")
    unknown = sorted(set(document) - {"estimator", "params"})
    if unknown:
        raise SettingsError(f"MLOPS_ESTIMATOR has unknown keys: {', '.join(unknown)} (it takes estimator, params)")
    name = document.get("estimator")
    if not isinstance(name, str) or not re.fullmatch(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*){2,}", name):
        raise SettingsError(f"MLOPS_ESTIMATOR: estimator must be a scikit-learn class path, got {name!r}")
    params = document.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) and PARAMETER_NAME.fullmatch(k) for k in params):
        raise SettingsError("MLOPS_ESTIMATOR: params must be an object of parameter names to values")
    return {"estimator": name, "params": dict(params)}


def _gate_policy(raw: str | None, task: str = "regression") -> GatePolicy:
    try:
        document: Any = json.loads(raw) if raw else {}
        if not isinstance(document, dict):
            raise SettingsError("MLOPS_GATE_POLICY must be a JSON object")
        return GatePolicy.for_task(document, task)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"MLOPS_GATE_POLICY is not valid JSON: {exc}") from None
    except (GateConfigError, TypeError) as exc:
        raise SettingsError(f"MLOPS_GATE_POLICY: {exc}") from None


def _rollout_policy(raw: str | None) -> RolloutPolicy:
    """MLOPS_ROLLOUT_POLICY (JSON, docs/rollout.md); unset: shadow, then canary 10% -> 50% -> 100%."""
    if not raw or not raw.strip():
        return RolloutPolicy()
    document = _json_object(raw, "MLOPS_ROLLOUT_POLICY")
    try:
        return RolloutPolicy.from_mapping(document)
    except RolloutConfigError as exc:
        raise SettingsError(f"MLOPS_ROLLOUT_POLICY: {exc}") from None


def _optional_seconds(env: Mapping[str, str], name: str, low: int, high: int) -> timedelta | None:
    """A whole number of seconds in low..high, or None when the setting is unset or empty."""
    if not (env.get(name) or "").strip():
        return None
    return timedelta(seconds=_int(env, name, 0, low, high))


def _switch_platform(env: Mapping[str, str], platform: str) -> str:
    """Where a test switch would run: on App Service (its own variables are set) it is Azure, whatever
    MLOPS_PLATFORM says, so a switch that kills the host or loses events can never be on there."""
    on_app_service = any(env.get(name) for name in ("WEBSITE_SITE_NAME", "WEBSITE_INSTANCE_ID"))
    return "azure" if on_app_service else platform


CRASH_POINT = re.compile(r"^(?P<step>[a-z_]+)(?:#(?P<nth>[1-9][0-9]{0,2}))?(?:@(?P<releases>[A-Za-z0-9_.*?-]+))?$")
CHAOS_SHARES = ("drop", "duplicate", "delay", "reorder")


def _local_crash_after(raw: str | None, platform: str) -> str:
    """MLOPS_LOCAL_CRASH_AFTER: ``step[#n][@releases]``, e.g. ``operation_started#2@rel-ado-*``; off when unset.

    The host dies (SIGKILL, as kill -9) right after it saved the n-th (default first) timeline entry
    ``step`` of a release whose id matches the pattern (default every release): the crash-matrix tests."""
    if not raw or not raw.strip():
        return ""
    if platform != "local":
        raise SettingsError("MLOPS_LOCAL_CRASH_AFTER kills the local host for the crash tests; unset it on Azure")
    if not CRASH_POINT.match(raw.strip()):
        raise SettingsError(
            f"MLOPS_LOCAL_CRASH_AFTER must look like step[#n][@release-pattern] (e.g. image_pushed@rel-*), not {raw!r}"
        )
    return raw.strip()


def _local_event_chaos(raw: str | None, platform: str) -> dict[str, Any]:
    """MLOPS_LOCAL_EVENT_CHAOS (JSON): the shares of the local bus's deliveries it drops, duplicates, delays
    (by ``delay_s``) or reorders, drawn from ``seed``; off when unset. Only events of releases that exist
    are dropped (platforms/local/chaos.py)."""
    if not raw or not raw.strip():
        return {}
    if platform != "local":
        raise SettingsError("MLOPS_LOCAL_EVENT_CHAOS is the local event bus's chaos switch; unset it on Azure")
    document = _json_object(raw, "MLOPS_LOCAL_EVENT_CHAOS")
    known = (*CHAOS_SHARES, "delay_s", "seed")
    unknown = sorted(set(document) - set(known))
    if unknown:
        raise SettingsError(
            f"MLOPS_LOCAL_EVENT_CHAOS: unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    chaos: dict[str, Any] = {"drop": 0.0, "duplicate": 0.0, "delay": 0.0, "reorder": 0.0, "delay_s": 2.0, "seed": 0}
    for name in known:
        value = _number(
            "MLOPS_LOCAL_EVENT_CHAOS", name, document.get(name, chaos[name]), int if name == "seed" else float
        )
        if name in CHAOS_SHARES and not 0.0 <= value <= 1.0:
            raise SettingsError(f"MLOPS_LOCAL_EVENT_CHAOS.{name} must be a share between 0 and 1, not {value}")
        if name == "delay_s" and not 0.0 <= value <= 60.0:
            raise SettingsError(f"MLOPS_LOCAL_EVENT_CHAOS.delay_s must be between 0 and 60 seconds, not {value}")
        chaos[name] = value
    return chaos


def _number(setting: str, name: str, value: Any, kind: type = float) -> float:
    """A JSON setting's numeric field: a number (a whole one when ``kind`` is int), never a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise SettingsError(f"{setting}.{name} must be a {'whole number' if kind is int else 'number'}, not {value!r}")
    return kind(value)


def _local_fault(raw: str | None, platform: str) -> dict[str, Any]:
    """MLOPS_LOCAL_FAULT (JSON, docs/rollout.md): a fault the local deployer injects into the production
    deployments whose key (release id) matches ``deployments`` (a shell pattern); off when unset. Staging
    never gets it, so a faulty release passes its staging tests the way a fault only live traffic shows would."""
    if not raw or not raw.strip():
        return {}
    if platform != "local":
        raise SettingsError("MLOPS_LOCAL_FAULT is the local deployer's fault injection; unset it on Azure")
    document = _json_object(raw, "MLOPS_LOCAL_FAULT")
    fields = {"deployments": str, "bias": float, "share": float, "error_share": float, "after_requests": int}
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise SettingsError(f"MLOPS_LOCAL_FAULT: unknown field(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    pattern = document.get("deployments")
    if not isinstance(pattern, str) or not pattern.strip():
        raise SettingsError("MLOPS_LOCAL_FAULT.deployments must name the deployments (a pattern of release ids)")
    fault: dict[str, Any] = {"deployments": pattern.strip(), "bias": 0.0, "share": 1.0, "error_share": 0.0,
                             "after_requests": 0}  # fmt: skip
    for name, kind in fields.items():
        value = document.get(name)
        if name == "deployments" or value is None:
            continue
        fault[name] = _number("MLOPS_LOCAL_FAULT", name, value, kind)
    for name in ("share", "error_share"):
        if not 0.0 <= fault[name] <= 1.0:
            raise SettingsError(f"MLOPS_LOCAL_FAULT.{name} must be between 0 and 1, got {fault[name]}")
    if fault["after_requests"] < 0:
        raise SettingsError("MLOPS_LOCAL_FAULT.after_requests must be >= 0")
    if not fault["bias"] and not fault["error_share"]:
        raise SettingsError("MLOPS_LOCAL_FAULT injects nothing: give a bias (with a share of rows) or an error_share")
    return fault


def _json_object(raw: str, name: str) -> dict[str, Any]:
    try:
        document: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{name} must be a JSON object")
    return document
