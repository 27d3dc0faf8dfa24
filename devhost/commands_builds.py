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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devhost.client import HostClient
from devhost.console import console, literal
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
        "buildSystem": "cli",
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


def release_of(event: dict[str, Any]) -> str:
    """The release a BuildCompleted starts (on a store that holds no release from before build systems)."""
    from functions.domain.ids import GENERIC, release_id_for_build

    data = event["data"]
    return release_id_for_build(str(data["buildId"]), str(data.get("buildSystem") or GENERIC))


def _git_head() -> str:
    """The checked-out commit, or "" outside a git checkout (the event still goes out)."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def cmd_trigger(args: argparse.Namespace, git_email: GitEmail | None = None) -> int:
    """`mlops trigger build [--commit SHA] [--build-id ID] [--param K=V ...] [--requester IDENTITY]`:
    deliver it to the running host, requested by --requester (default: `git config user.email`)."""
    requester = local_identity(args.requester, "--requester", git_email)
    event = build_completed_event(args.commit, parse_params(args.param), args.build_id, requester=requester)
    HostClient().deliver("on_build_event", [event])
    release_id = release_of(event)
    said = literal(f"build {event['data']['buildId']} delivered (requester {requester}); release ")
    console.print(said.append(release_id, style="bold"), soft_wrap=True)
    return 0


# ---- publish build-completed (what a CI system runs) --------------------------------------
@dataclass(frozen=True)
class CiVariables:
    """Where one CI system keeps what the build resource says (environment variable names, first set wins)."""

    system: str
    markers: tuple[str, ...]  # any of these set: the build runs on this system
    build_id: tuple[str, ...]
    build_number: tuple[str, ...]
    commit: tuple[str, ...]
    branch: tuple[str, ...]
    repository: tuple[str, ...]
    requested_for: tuple[str, ...]
    result: tuple[str, ...] = ()


# In the order they are recognised (Azure DevOps' variables win when a runner has several).
CI_SYSTEMS = (
    CiVariables("ado", ("TF_BUILD", "BUILD_BUILDID", "AGENT_JOBSTATUS"), ("BUILD_BUILDID",), ("BUILD_BUILDNUMBER",),
                ("BUILD_SOURCEVERSION",), ("BUILD_SOURCEBRANCH",), ("BUILD_REPOSITORY_NAME",),
                ("BUILD_REQUESTEDFOREMAIL", "BUILD_REQUESTEDFOR"), ("AGENT_JOBSTATUS",)),
    CiVariables("github", ("GITHUB_ACTIONS", "GITHUB_RUN_ID"), ("GITHUB_RUN_ID",), ("GITHUB_RUN_NUMBER",),
                ("GITHUB_SHA",), ("GITHUB_REF",), ("GITHUB_REPOSITORY",),
                ("GITHUB_TRIGGERING_ACTOR", "GITHUB_ACTOR")),
    # Jenkins numbers builds per job: the job's name is part of the build id (build_id_of).
    CiVariables("jenkins", ("JENKINS_URL",), ("BUILD_NUMBER",), ("BUILD_NUMBER",), ("GIT_COMMIT",),
                ("GIT_LOCAL_BRANCH", "GIT_BRANCH"), ("GIT_URL",), ("BUILD_USER_EMAIL", "BUILD_USER")),
    CiVariables("gitlab", ("GITLAB_CI", "CI_PIPELINE_ID"), ("CI_PIPELINE_ID",), ("CI_PIPELINE_IID",),
                ("CI_COMMIT_SHA",), ("CI_COMMIT_REF_NAME",), ("CI_PROJECT_PATH",),
                ("GITLAB_USER_EMAIL", "GITLAB_USER_LOGIN"), ("CI_JOB_STATUS",)),
    CiVariables("travis", ("TRAVIS", "TRAVIS_BUILD_ID"), ("TRAVIS_BUILD_ID",), ("TRAVIS_BUILD_NUMBER",),
                ("TRAVIS_COMMIT",), ("TRAVIS_BRANCH",), ("TRAVIS_REPO_SLUG",), (), ("TRAVIS_TEST_RESULT",)),
)  # fmt: skip
NO_CI = CiVariables("generic", (), (), (), (), (), (), ())


def ci_system(env: Mapping[str, str], named: str | None = None) -> CiVariables:
    """The CI system the command runs on (``named`` by --system, else recognised by its variables)."""
    if named:
        found = next((ci for ci in CI_SYSTEMS if ci.system == named), None)
        return found or CiVariables(named, (), (), (), (), (), (), ())
    return next((ci for ci in CI_SYSTEMS if any((env.get(name) or "").strip() for name in ci.markers)), NO_CI)


def _result_word(ci: CiVariables, raw: str) -> str:
    """Travis says 0 (passed) or 1 (failed) in TRAVIS_TEST_RESULT; the others say a word."""
    if ci.system == "travis" and raw.isdigit():
        return "succeeded" if raw == "0" else "failed"
    return raw


def build_completed_data(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """MLOps.BuildCompleted data from the options, defaulting to the CI system's own variables."""
    from functions.domain.events import build_result
    from functions.domain.ids import build_system_problem

    ci = ci_system(env, args.system)
    problem = build_system_problem(ci.system)
    if problem:
        raise SettingsError(f"--system: {problem}")

    def pick(explicit: str | None, names: tuple[str, ...]) -> str:
        if explicit:
            return explicit.strip()
        return next((env[name].strip() for name in names if (env.get(name) or "").strip()), "")

    build_id = pick(args.build_id, ci.build_id)
    if not build_id:
        known = ", ".join(f"{c.build_id[0]} ({c.system})" for c in CI_SYSTEMS)
        raise SettingsError(f"--build-id is required (or one of {known} in the environment)")
    if ci.system == "jenkins" and not args.build_id and (env.get("JOB_NAME") or "").strip():
        build_id = f"{env['JOB_NAME'].strip()}-{build_id}"  # build numbers count per job
    raw_result = _result_word(ci, pick(args.result, ci.result))
    if not raw_result:
        raise SettingsError("--result is required: succeeded, partiallySucceeded, failed or canceled")
    result = build_result(raw_result)
    if result is None:
        raise SettingsError(f"--result {raw_result!r}: use succeeded, partiallySucceeded, failed or canceled")
    build_number = pick(args.build_number, ci.build_number) or build_id
    data: dict[str, Any] = {
        "buildSystem": ci.system,
        "buildId": build_id,
        "buildNumber": build_number,
        "result": result,
    }
    branch = pick(args.branch, ci.branch)
    if ci.system == "jenkins" and branch.startswith("origin/") and not args.branch:
        branch = branch.removeprefix("origin/")
    if branch and not branch.startswith("refs/") and ci.system != "ado":
        branch = f"refs/heads/{branch}"
    # The requester's comparable identity for the approval policy (no self-approval): --requester or
    # MLOPS_REQUESTER; Azure DevOps and GitLab know the email (requestedFor, compared when it is one).
    for field, value in (("sourceVersion", pick(args.commit, ci.commit)), ("sourceBranch", branch),
                         ("repository", pick(args.repository, ci.repository)),
                         ("requestedFor", pick(args.requested_for, ci.requested_for)),
                         ("requester", pick(args.requester, ("MLOPS_REQUESTER",)))):  # fmt: skip
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
            said = f"mlops: publishing to {where} failed: {type(exc).__name__}: {exc}"
            console.print(literal(said, "red"), soft_wrap=True)
            return 1
        finally:
            close = getattr(publisher, "close", None)
            if callable(close):
                close()
    console.print(f"event {event_id}: {BUILD_COMPLETED} for build {data['buildId']} ({data['result']}) "
                  f"sent to {where or 'the custom topic'}", soft_wrap=True, markup=False)  # fmt: skip
    if data["result"] in ("succeeded", "partiallySucceeded"):
        release = release_id_for_build(data["buildId"], data["buildSystem"])
        console.print(f"release {release}", soft_wrap=True, markup=False)
    else:
        console.print(f"no release: a {data['result']} build starts none", soft_wrap=True, markup=False)
    return 0
