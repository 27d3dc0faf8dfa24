"""`mlops trigger build` and `mlops publish build-completed`: the two ways to send MLOps.BuildCompleted.

`trigger build` is the local shortcut: it makes up a build from the git HEAD and delivers it straight
to a running host, with the local user (--requester, default `git config user.email`) as its
``requester``, the identity the approval policy keeps from approving their own build.
`publish build-completed` is what a CI system runs: the build's facts come from its options or, when
left out, from the CI system's own variables, and the event goes to the Event Grid custom topic (or,
with --to-host, to a local host's webhook). Both read `--param key=value` as training parameters, the
way ml_pipeline/train.py reads them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from devhost.client import HostClient
from devhost.console import console
from devhost.settings import REPO_ROOT
from devhost.signing import GitEmail, local_identity
from functions.settings import SettingsError

if TYPE_CHECKING:
    from functions.ports import Publisher


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs as train's ``--param`` reads them (values are JSON when they parse)."""
    from ml_pipeline.errors import PipelineInputError
    from ml_pipeline.train import parse_overrides

    try:
        return parse_overrides(pairs)
    except PipelineInputError as exc:
        raise SystemExit(f"mlops: {exc}") from None


# ---- trigger build (straight to a running host) -----------------------------------------
def build_completed_event(
    commit: str | None, params: dict[str, Any], build_id: str | None = None, *, requester: str | None = None,
    requested_for: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A succeeded MLOps.BuildCompleted for this checkout, in the Event Grid envelope Azure would send.

    ``requester`` is who started the build as an identity the approval policy compares with the
    approver's (a UPN/email; data field ``requester``); without one the default policy cannot rule
    out self-approval and refuses every approval. ``requested_for`` is the display name CI records
    (default: $USER).
    """
    from platforms.local.events import build_event

    build_id = build_id or f"local-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"
    data: dict[str, Any] = {
        "buildId": build_id,
        "buildNumber": build_id,
        "result": "succeeded",
        "sourceVersion": commit or _git_head(),
        "sourceBranch": "refs/heads/main",
        "repository": REPO_ROOT.name,
        "requestedFor": requested_for or os.environ.get("USER", "local"),
    }
    if requester:
        data["requester"] = requester
    if params:
        data["parameters"] = params
    return build_event("MLOps.BuildCompleted", f"builds/{build_id}", data)


def _git_head() -> str:
    """The checked-out commit, or "" outside a git checkout (the event still goes out)."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def cmd_trigger(args: argparse.Namespace, git_email: GitEmail | None = None) -> int:
    """`mlops trigger build [--commit SHA] [--build-id ID] [--param K=V ...] [--requester IDENTITY]`:
    deliver it to the running host, requested by --requester (default: `git config user.email`)."""
    from functions.domain.ids import release_id_for_build

    requester = local_identity(args.requester, "--requester", git_email)
    event = build_completed_event(args.commit, parse_params(args.param), args.build_id, requester=requester)
    HostClient().deliver("on_build_event", [event])
    release_id = release_id_for_build(event["data"]["buildId"])
    console.print(f"build {event['data']['buildId']} delivered (requester {requester}); release [bold]{release_id}[/]")
    return 0


# ---- publish build-completed (what a CI system runs) --------------------------------------
# Where a CI system keeps what the build resource says: Azure DevOps' predefined variables (as
# environment variables) first, then GitHub Actions'. An explicit option always wins.
CI_ENV: dict[str, tuple[str, ...]] = {
    "build_id": ("BUILD_BUILDID", "GITHUB_RUN_ID"),
    "build_number": ("BUILD_BUILDNUMBER", "GITHUB_RUN_NUMBER"),
    "commit": ("BUILD_SOURCEVERSION", "GITHUB_SHA"),
    "branch": ("BUILD_SOURCEBRANCH", "GITHUB_REF"),
    "repository": ("BUILD_REPOSITORY_NAME", "GITHUB_REPOSITORY"),
    "requested_for": ("BUILD_REQUESTEDFOREMAIL", "BUILD_REQUESTEDFOR", "GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR"),
    # The requester's comparable identity for the approval policy (no self-approval): Azure DevOps knows
    # the email (requestedFor, which the policy compares when it is one); GitHub Actions only a login, so
    # its workflows pass --requester (or MLOPS_REQUESTER).
    "requester": ("MLOPS_REQUESTER",),
}
# Build results as Azure DevOps names them; also Agent.JobStatus and GitHub's job.status words.
BUILD_RESULTS = {
    "succeeded": "succeeded",
    "success": "succeeded",
    "partiallysucceeded": "partiallySucceeded",
    "succeededwithissues": "partiallySucceeded",
    "failed": "failed",
    "failure": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
}


def build_completed_data(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """MLOps.BuildCompleted data from the options, defaulting to the CI system's own variables."""

    def pick(explicit: str | None, key: str) -> str:
        if explicit:
            return explicit.strip()
        return next((env[name].strip() for name in CI_ENV[key] if (env.get(name) or "").strip()), "")

    build_id = pick(args.build_id, "build_id")
    if not build_id:
        raise SettingsError("--build-id is required (or BUILD_BUILDID / GITHUB_RUN_ID in the environment)")
    raw_result = (args.result or env.get("AGENT_JOBSTATUS") or "").strip()
    if not raw_result:
        raise SettingsError("--result is required: succeeded, partiallySucceeded, failed or canceled")
    result = BUILD_RESULTS.get(raw_result.lower())
    if result is None:
        raise SettingsError(f"--result {raw_result!r}: use succeeded, partiallySucceeded, failed or canceled")
    data: dict[str, Any] = {"buildId": build_id, "buildNumber": pick(args.build_number, "build_number") or build_id,
                            "result": result}  # fmt: skip
    for field, key in (("sourceVersion", "commit"), ("sourceBranch", "branch"), ("repository", "repository"),
                       ("requestedFor", "requested_for"), ("requester", "requester")):  # fmt: skip
        value = pick(getattr(args, key), key)
        if value:
            data[field] = value
    params = parse_params(args.param)
    if params:
        data["parameters"] = params
    return data


def _topic_publisher(endpoint: str, env: Mapping[str, str]) -> Publisher:
    from platforms.azure.publisher import EventGridPublisher, credential_for

    # A topic access key for CI systems without an Azure identity; never printed or logged.
    return EventGridPublisher(endpoint, credential_for(env.get("EVENTGRID_TOPIC_KEY") or None))


def cmd_publish_build(
    args: argparse.Namespace, publisher: Publisher | None = None, env: Mapping[str, str] | None = None
) -> int:
    """Send MLOps.BuildCompleted to the custom topic (or, with --to-host, to a local host's webhook)."""
    from functions.domain.events import BUILD_COMPLETED
    from functions.domain.ids import release_id_for_build

    env = os.environ if env is None else env
    data = build_completed_data(args, env)
    subject = f"builds/{data['buildId']}"
    if args.to_host:
        from platforms.local.events import build_event

        event = build_event(BUILD_COMPLETED, subject, data)
        HostClient(args.to_host).deliver("on_build_event", [event])
        event_id, where = event["id"], args.to_host
    else:
        where = (args.topic_endpoint or env.get("EVENTGRID_TOPIC_ENDPOINT") or "").strip()
        if publisher is None:
            if not where.startswith("https://"):
                raise SettingsError(
                    "no Event Grid topic: pass --topic-endpoint https://... or set EVENTGRID_TOPIC_ENDPOINT "
                    "(or --to-host URL to deliver to a local host)"
                )
            publisher = _topic_publisher(where, env)
        from azure.core.exceptions import AzureError

        try:
            event_id = publisher.publish(BUILD_COMPLETED, subject, data)
        except AzureError as exc:
            console.print(f"[red]mlops: publishing to {where} failed: {type(exc).__name__}: {exc}[/]", soft_wrap=True)
            return 1
        finally:
            close = getattr(publisher, "close", None)
            if callable(close):
                close()
    console.print(f"event {event_id}: {BUILD_COMPLETED} for build {data['buildId']} ({data['result']}) "
                  f"sent to {where or 'the custom topic'}", soft_wrap=True, markup=False)  # fmt: skip
    if data["result"] in ("succeeded", "partiallySucceeded"):
        console.print(f"release {release_id_for_build(data['buildId'])}", soft_wrap=True, markup=False)
    else:
        console.print(f"no release: a {data['result']} build starts none", soft_wrap=True, markup=False)
    return 0
