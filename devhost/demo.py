"""`mlops demo` / `make demo`: the whole release loop on this machine, over HTTP.

build event (from CI, requester ci-bot@mlops.local) -> retraining pipeline -> gate -> register ->
image -> staging + tests -> approval requested -> approved over HTTP, signed as the local user
(`git config user.email`, else demo-approver@mlops.local) the way `mlops approve` signs ->
production beside the serving version, tested directly -> live (nothing served before it, so all
traffic at once); then a second build with worse training parameters, rejected by the gate with its
evidence. From here live scoring traffic flows to production. A third build passes the gate and
staging but its production deployment has an injected fault (MLOPS_LOCAL_FAULT: biased predictions
on a share of rows): the rollout's shadow step sees its predictions diverge and rolls it back by
itself. A fourth, the same parameters without the fault, goes shadow -> canary 10% -> 50% -> 100%
-> live, a progress bar per step. Last, a rollback puts the first version back (tested before the
traffic moves), after which production serves the first model's predictions again. On the way it
shows what each notification target format received for the approval request, and at the end the
approval page's one-time sign-in link. Starts from a clean $MLOPS_HOME and leaves the host and
production endpoint running (`mlops down` stops them) unless asked to stop.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import uuid
from typing import Any

import requests
from rich.table import Table
from rich.text import Text

from devhost.client import HostClient, release_path
from devhost.commands_builds import build_completed_event, release_of
from devhost.commands_host import cmd_down, settings_for_port, start_detached
from devhost.commands_releases import state_label
from devhost.commands_ui import describe_payloads, login_url
from devhost.console import console, literal
from devhost.rollout_progress import follow_rollout
from devhost.settings import REPO_ROOT
from devhost.signing import GitEmail, LocalSigner, git_user_email
from devhost.traffic import LiveTraffic
from functions.domain.rollout import step_from_json
from functions.entrypoints.identity.local_signature import key_path
from functions.settings import Settings
from platforms.common.model_files import MODEL_FILE
from platforms.local.notifier import NOTIFICATIONS_FILE, read_notifications

AT_REST = {"awaiting_approval", "live", "rejected", "declined", "expired", "failed", "rolled_back", "superseded"}
# A first model with heavy regularisation goes live (no champion yet); more of it is worse and the gate
# rejects it; the default parameters are clearly better and go live; then production goes back to the first.
FIRST_PARAMS = {"alpha": 3.0}
WORSE_PARAMS = {"alpha": 5.0}
NEWER_PARAMS: dict[str, Any] = {}
ROWS_TO_SCORE = 3
# The builds come from CI, the approval from a person: the default policy refuses self-approval.
CI_REQUESTER = "ci-bot@mlops.local"
DEFAULT_APPROVER = "demo-approver@mlops.local"
# The rollout in demo time (docs/rollout.md): the default policy's steps with windows of seconds, not
# minutes. Latency is recorded, not deciding: a laptop running the whole loop is a noisy place to time.
DEMO_ROLLOUT_POLICY = {"window_s": 4, "min_requests": 40, "max_wait_s": 90, "keep_previous_s": 600,
                       "latency": {"decides": False}}  # fmt: skip
# The faulty build: the local deployer's fault injection (off unless set) biases a third of the rows its
# production deployment answers once the direct tests have passed; staging never gets it.
FAULTY_SUFFIX = "-faulty"
DEMO_FAULT = {"deployments": f"*{FAULTY_SUFFIX}", "bias": 150.0, "share": 0.3, "after_requests": 10}
LIVE_TRAFFIC_RATE_PER_S = 40.0


def run_demo(port: int, keep_running: bool = True, timeout_s: float = 180.0) -> int:
    started = time.monotonic()
    os.environ.setdefault("MLOPS_ROLLOUT_POLICY", json.dumps(DEMO_ROLLOUT_POLICY))
    os.environ["MLOPS_LOCAL_FAULT"] = json.dumps(DEMO_FAULT)
    settings = settings_for_port(port)
    console.rule("[bold]ML release loop, locally: build → train → gate → staging → approval → production")
    _reset_home(settings)
    if start_detached(settings, port) != 0:
        return 1
    client = HostClient(settings.host_url)
    try:
        first, approver, signer = first_release_live(
            client, settings, FIRST_PARAMS, "metrics and staging tests look good", timeout_s
        )
        if first["state"] != "live":
            return _failed(first)
        production_url = first["production"]["live_endpoint"]["scoring_url"]
        _score_production(first, production_url)

        second = _run_build(client, WORSE_PARAMS, "rejected", timeout_s)
        if second["state"] != "rejected":
            return _failed(second)

        with LiveTraffic(production_url, _rows(), rate_per_s=LIVE_TRAFFIC_RATE_PER_S) as traffic:
            console.print(f"[bold]→ live traffic:[/] {LIVE_TRAFFIC_RATE_PER_S:g} scoring requests a second to "
                          f"{production_url} from here on; rollout policy: {_policy_said(settings)}")  # fmt: skip
            console.print(f"[bold]→ fault injection[/] (MLOPS_LOCAL_FAULT, docs/rollout.md): the next build's "
                          f"production deployment adds {DEMO_FAULT['bias']:g} to {DEMO_FAULT['share']:.0%} of its "
                          "predictions once its direct tests are done; it passes the gate and staging")  # fmt: skip
            faulty = _run_build(client, NEWER_PARAMS, "awaiting_approval", timeout_s, suffix=FAULTY_SUFFIX)
            if faulty["state"] != "awaiting_approval":
                return _failed(faulty)
            faulty = _approve_in_rollout(client, faulty, signer, approver, "looks better", traffic, timeout_s)
            if faulty["state"] != "rolled_back":
                return _failed(faulty)
            _shares_seen(faulty)

            third = _run_build(client, NEWER_PARAMS, "awaiting_approval", timeout_s)
            if third["state"] != "awaiting_approval":
                return _failed(third)
            third = _approve_in_rollout(client, third, signer, approver, "a little better regularised", traffic,
                                        timeout_s)  # fmt: skip
            if third["state"] != "live":
                return _failed(third)
            _shares_seen(third)
        _score_production(third, production_url)

        back = _roll_back_to(client, first, signer, timeout_s)
        if back["state"] != "live":
            return _failed(back)
        _score_production(first, production_url)
        _summary([client.release(r["id"]) for r in (first, second, faulty, third, back)], production_url)
        console.print(f"\n[bold]approval page[/] (signed in as {approver}; one use within 10 minutes, "
                      f"`{cli_hint('ui')}` mints another):")  # fmt: skip
        print(login_url(settings, approver, first["id"]))
        console.print(f"to put an earlier version back yourself: `{cli_hint('rollback --to VERSION --comment WHY')}`")
        console.print(f"\n[dim]whole demo: {time.monotonic() - started:.0f} s[/]")
    finally:
        if not keep_running:
            cmd_down()
    if keep_running:
        console.print(f"host and production endpoint still running; stop them with: {cli_hint('down')}")
    return 0


def first_release_live(
    client: HostClient, settings: Settings, params: dict[str, Any], comment: str, timeout_s: float
) -> tuple[dict[str, Any], str, LocalSigner]:
    """The first build, with no champion yet, through the gate, staging and approval: the release as it
    came to rest (live unless something failed), who approved it and their signer."""
    approver = demo_approver()
    signer = LocalSigner.for_home(settings.home, approver)
    first = _run_build(client, params, "awaiting_approval", timeout_s)
    if first["state"] != "awaiting_approval":
        return first, approver, signer
    _show_notifications(settings, first["id"])
    return _approve_and_follow(client, first, signer, approver, comment, timeout_s), approver, signer


def _approve_in_rollout(
    client: HostClient, release: dict[str, Any], signer: LocalSigner, approver: str, comment: str,
    traffic: LiveTraffic, timeout_s: float,
) -> dict[str, Any]:  # fmt: skip
    """Approve, then draw the rollout's steps (a bar each) while the live traffic flows, until it ends."""
    answer = client.approve(release["id"], signer, comment)
    who = (answer.get("approval") or {}).get("by") or approver
    rest = " (HTTP 202): beside production, tested directly, then the traffic step by step, each step judged on "
    rest += "what it served"
    console.print(Text.assemble("approved by ", literal(who, "bold"), rest))
    return follow_rollout(client, release["id"], traffic.production_url, _print_entry, timeout_s * 2,
                          printed=_count_before(answer, "approved"))  # fmt: skip


def _print_entry(entry: dict[str, Any]) -> None:
    _print_timeline({"timeline": [entry]}, already=0)


def _shares_seen(release: dict[str, Any]) -> None:
    """How much of the live traffic the new deployment answered in each step it held, as the router
    counted it for the step's analysis (smooth weighted round-robin: at most ceil(share x n) of n)."""
    for step in ((release.get("production") or {}).get("rollout") or {}).get("steps") or []:
        verdict = step.get("verdict")
        if not verdict:
            continue
        new, old = verdict["candidate"], verdict["stable"]
        if step["kind"] == "shadow":
            said = f"0 live requests of {old['requests']}; {new['requests']} mirrored copies, answers discarded"
        else:
            n = new["requests"] + old["requests"]
            said = f"{new['requests']} of {n} live requests (at most {math.ceil(step['share'] / 100 * n)})"
        console.print(f"   {step_from_json(step).label:<12} {new['deployment']} answered {said}")


def _policy_said(settings: Settings) -> str:
    policy = settings.rollout_policy
    first = policy.steps[0] if policy.steps else None
    hold = f", each step {first.window_s:g} s and {first.min_requests} requests" if first else ""
    return policy.describe() + hold


def _rows(data: str = "diabetes") -> list[list[float]]:
    """The data set's feature rows, columns in the data's order: what live traffic sends."""
    import numpy as np

    from ml_pipeline.dataset import DEFAULT_TARGET, feature_columns, load_dataset

    frame = load_dataset(data)
    rows: list[list[float]] = frame[feature_columns(frame, DEFAULT_TARGET)].to_numpy(dtype=np.float64).tolist()
    return rows


def _approve_and_follow(
    client: HostClient, release: dict[str, Any], signer: LocalSigner, approver: str, comment: str, timeout_s: float
) -> dict[str, Any]:
    """Approve over HTTP as the local user, then print the promotion's steps until it ends."""
    approve_url = f"{client.base_url}{release_path(release['id'], 'approve')}"
    console.print(f"[bold]→ approving over HTTP:[/] POST {approve_url} as {approver}, signed with "
                  f"{key_path(Settings.from_env().home)} (requested by {CI_REQUESTER})")  # fmt: skip
    answer = client.approve(release["id"], signer, comment)
    who = (answer.get("approval") or {}).get("by") or approver
    console.print(Text.assemble("approved by ", literal(who, "bold"), " (HTTP 202): the promotion goes on in the "
                                "background: beside production, tested directly, then traffic"))  # fmt: skip
    return _follow(client, release["id"], timeout_s, printed=_count_before(answer, "approved"))


def _roll_back_to(client: HostClient, target: dict[str, Any], signer: LocalSigner, timeout_s: float) -> dict[str, Any]:
    version = target["candidate"]["model"]["version"]
    console.rule(f"[bold]rollback to model version {version} ({target['id']})")
    console.print(f"→ POST {client.base_url}/api/production/rollback (what `{cli_hint(f'rollback --to {version}')}` "
                  "sends): a new release with that image and model, no retraining")  # fmt: skip
    answer = client.rollback(signer, "demo: back to the first version", version)
    return _follow(client, answer["id"], timeout_s)


def _show_notifications(settings: Settings, release_id: str) -> None:
    """What the approval request told people: each target format's payload, and where the rest is."""
    wanted = [r for r in read_notifications(settings.home) if r["release_id"] == release_id]
    requests_sent = [r for r in wanted if r.get("kind") == "approval_requested"]
    if not requests_sent:
        console.print("[yellow]no approval notification in the local file yet[/]")
        return
    webhooks = [spec.name for spec in settings.notification_targets()]
    configured = ", ".join(webhooks) if webhooks else "none (MLOPS_NOTIFICATION_TARGETS, docs/notifications.md)"
    said = (f"{requests_sent[-1]['title']}; webhook targets: {configured}; {settings.home / NOTIFICATIONS_FILE} "
            "has it. What each target format receives:")  # fmt: skip
    console.print(Text.assemble(("→ notified:", "bold"), " ", literal(said)))
    for line in describe_payloads(requests_sent[-1]):
        console.print(f"   {line}", highlight=False)
    console.print(f"   (whole payloads: {cli_hint('notifications --format teams')})")


def demo_approver(git_email: GitEmail | None = None) -> str:
    """Who approves in the demo: the local user as the CLI would sign (`git config user.email`), else a
    stand-in; never the CI requester, whose own approval the policy would refuse."""
    email = (git_email or (lambda: git_user_email(REPO_ROOT)))()
    return email if email and email.lower() != CI_REQUESTER else DEFAULT_APPROVER


def cli_hint(command: str) -> str:
    return f".venv/bin/mlops {command}"


def _reset_home(settings: Settings) -> None:
    cmd_down()
    if settings.home.exists():
        shutil.rmtree(settings.home)
    settings.home.mkdir(parents=True)
    console.print(f"state in {settings.home} (reset)")


def _run_build(
    client: HostClient, params: dict[str, Any], expected: str, timeout_s: float, suffix: str = ""
) -> dict[str, Any]:
    build_id = f"local-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}{suffix}"
    event = build_completed_event(None, params, build_id, requester=CI_REQUESTER, requested_for=CI_REQUESTER)
    build_id = event["data"]["buildId"]
    release_id = release_of(event)
    shown = f" with parameters {json.dumps(params)}" if params else ""
    console.rule(f"[bold]build {build_id}{shown}")
    console.print(
        f"→ MLOps.BuildCompleted to /runtime/webhooks/eventgrid?functionName=on_build_event; release {release_id}"
    )
    client.deliver("on_build_event", [event])
    return _follow(client, release_id, timeout_s)


def _follow(client: HostClient, release_id: str, timeout_s: float, printed: int = 0) -> dict[str, Any]:
    """Print timeline entries (after the first ``printed``) as they happen until the release comes to rest."""
    deadline = time.monotonic() + timeout_s
    with console.status(f"waiting for {release_id}…") as status:
        while True:
            release = client.release(release_id)
            printed = _print_timeline(release, already=printed)
            status.update(f"{release_id}: {release['state']}…")
            if release["state"] in AT_REST or time.monotonic() > deadline:
                return release
            time.sleep(0.3)


def _print_timeline(release: dict[str, Any], already: int) -> int:
    for entry in release["timeline"][already:]:
        failed = entry["step"] in ("failed", "gate_rejected", "rolled_back")
        mark = ("✘", "red") if failed else ("✔", "green")
        console.print(
            Text.assemble(mark, f" {entry['at'][11:19]} ", (entry["step"], "bold"), ": ", literal(entry["detail"]))
        )
    return len(release["timeline"])


def _count_before(release: dict[str, Any], step: str) -> int:
    steps = [entry["step"] for entry in release["timeline"]]
    return steps.index(step) if step in steps else len(steps)


def _score_production(release: dict[str, Any], production_url: str) -> None:
    import joblib
    import numpy as np
    from sklearn.datasets import load_diabetes

    rows = load_diabetes().data[:ROWS_TO_SCORE]
    response = requests.post(production_url, json={"data": rows.tolist()}, timeout=30)
    response.raise_for_status()
    served = response.json()["result"]
    model_dir = release["candidate"]["model"]["location"]
    expected = joblib.load(os.path.join(model_dir, MODEL_FILE)).predict(np.asarray(rows)).tolist()
    same = "equal to" if served == expected else "[red]DIFFERENT from[/]"
    console.print(f"✔ production {production_url} scored {ROWS_TO_SCORE} rows: {[round(v, 2) for v in served]} "
                  f"({same} the registered model's predictions)")  # fmt: skip


def _summary(
    releases: list[dict[str, Any]], production_url: str, metric: str = "mse", first_row: list[float] | None = None
) -> None:
    places = ".1f" if metric == "mse" else ".4f"  # mse is in squared target units; the rest are near 0..1
    table = Table(title="Releases")
    for column in ("release", "state", f"challenger {metric}", f"champion {metric}", "difference, 95% CI",
                   "production URL"):  # fmt: skip
        table.add_column(column)
    for release in releases:
        gate = release.get("gate") or {}
        evidence = gate.get("evidence") or {}
        difference = ((gate.get("evaluation") or {}).get("differences") or {}).get(metric) or {}
        interval = (difference.get("intervals") or {}).get("0.95")
        diff_text = (
            f"{difference['estimate']:+{places}} [{interval[0]:+{places}}, {interval[1]:+{places}}]"
            if interval
            else "—"
        )
        champion = evidence.get("champion")
        table.add_row(
            release["id"], state_label(release["state"]), f"{evidence.get('candidate', float('nan')):{places}}",
            f"{champion:{places}}" if champion is not None else "none", diff_text,
            production_url if release["state"] == "live" else "",
        )  # fmt: skip
    console.print(table)
    for release in releases:
        trigger = release["trigger"]
        if trigger.get("kind") == "rollback":
            line = f"{release['id']}: rollback to {trigger['to']} ({trigger['model']}): {trigger['reason']}"
            console.print(literal(line), soft_wrap=True)
        elif release["state"] == "rolled_back":
            said = Text.assemble((f"{release['id']} rolled back by itself:", "red"), " ", literal(release.get("error")))
            console.print(said, soft_wrap=True)
        else:
            line = f"gate for {release['id']}: {(release.get('gate') or {}).get('reason', '—')}"
            console.print(literal(line), soft_wrap=True)
    console.print(f"production URL: {production_url}")
    row = ", ".join(f"{v:.4f}" for v in (first_row or _first_row()))
    console.print(
        f"try it: curl -s -X POST {production_url} -H 'Content-Type: application/json' -d '{{\"data\": [[{row}]]}}'"
    )


def _first_row() -> list[float]:
    from sklearn.datasets import load_diabetes

    return load_diabetes().data[0].tolist()


def _failed(release: dict[str, Any]) -> int:
    console.print(literal(f"✘ release {release['id']} ended {release['state']}: {release.get('error')}", "red"))
    return 1
