"""`mlops`: run the release loop on this machine and drive it.

mlops up [--port 7071] [--detach]    serve function_app.py like Core Tools (127.0.0.1)
mlops down                           stop the host and every process it started
mlops demo [--data breast_cancer]    the whole release loop, end to end (a regressor, or a classifier)
mlops trigger build [--commit SHA] [--param key=value ...] [--requester IDENTITY]
mlops publish build-completed --build-id ID --result succeeded [...]   what CI sends to the custom topic
mlops releases [--json] | show ID [--json] | dead-letters [--json] [--before CURSOR] | parked [--json]
mlops approve ID [--by IDENTITY | --link TOKEN] [--comment TEXT] [--no-wait]
mlops reject ID [--by IDENTITY | --link TOKEN] --comment TEXT
                                     signed as --by (default: git config user.email) with the key in
                                     $MLOPS_HOME, or with a signed link's token; never a name in the body
mlops rollback [--to VERSION|RELEASE] --comment TEXT [--by IDENTITY] [--no-wait]
                                     an earlier version back in production, tested before traffic moves
mlops azure bootstrap [--dry-run]    one-time Azure setup (platforms/azure/provisioning.py)

`up` and `demo` put the app settings function_app.py binds by name (the timers' schedules) in the
environment when unset (devhost/settings.py), and `up` refuses to start when the app does not index.

This module is the argument parser and `main`; the commands live by job in devhost/commands_host.py
(up, down, demo), devhost/commands_builds.py (trigger build, publish build-completed),
devhost/commands_releases.py (releases, show, approve, reject, rollback, dead-letters) and
devhost/commands_azure.py (azure bootstrap).
"""

from __future__ import annotations

import argparse
import sys

from devhost.client import HostError
from devhost.commands_azure import add_azure_parser
from devhost.commands_builds import cmd_publish_build, cmd_trigger
from devhost.commands_data import cmd_trigger_data
from devhost.commands_host import cmd_demo, cmd_down, cmd_up
from devhost.commands_migrate import add_migrate_parser
from devhost.commands_releases import (
    cmd_approve,
    cmd_dead_letters,
    cmd_parked,
    cmd_reject,
    cmd_releases,
    cmd_rollback,
    cmd_show,
)
from devhost.commands_ui import add_ui_parsers
from devhost.console import console, literal
from functions.domain.input_limits import DEFAULT_PAGE, MAX_PAGE
from functions.settings import SettingsError

DEFAULT_PORT = 7071


def build_parser() -> argparse.ArgumentParser:
    """Every command and flag of `mlops`; each subcommand carries its handler as ``args.handler``."""
    parser = argparse.ArgumentParser(prog="mlops", description="Run and drive the ML release loop locally.")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="serve function_app.py like Core Tools on 127.0.0.1")
    up.add_argument("--port", type=int, default=DEFAULT_PORT)
    up.add_argument("--detach", action="store_true", help="run in the background")
    up.set_defaults(handler=cmd_up)
    commands.add_parser("down", help="stop the host and every process it started").set_defaults(handler=cmd_down)

    demo = commands.add_parser("demo", help="the whole release loop, end to end")
    demo.add_argument("--port", type=int, default=DEFAULT_PORT)
    demo.add_argument("--stop", action="store_true", help="stop the host and endpoints at the end")
    demo.add_argument(
        "--data",
        choices=("diabetes", "breast_cancer"),
        default="diabetes",
        help="diabetes: a regressor (the default); breast_cancer: a classifier, gated on log loss",
    )
    demo.set_defaults(handler=cmd_demo)

    trigger = commands.add_parser("trigger", help="send an event as CI would")
    trigger_kinds = trigger.add_subparsers(dest="kind", required=True)
    build = trigger_kinds.add_parser("build", help="MLOps.BuildCompleted")
    build.add_argument("--commit")
    build.add_argument("--build-id")
    build.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    build.add_argument(
        "--requester", metavar="IDENTITY", help="who started the build (UPN/email); default: git config user.email"
    )
    build.set_defaults(handler=cmd_trigger)
    data = trigger_kinds.add_parser(
        "data",
        help="Microsoft.Storage.BlobCreated: FILE lands in the training-data container ($MLOPS_HOME/training-data)",
    )
    data.add_argument("file", metavar="FILE", help="a CSV of training data (features and the target column)")
    data.set_defaults(handler=cmd_trigger_data)

    publish = commands.add_parser("publish", help="send an event to the Event Grid custom topic, as CI does")
    publish_kinds = publish.add_subparsers(dest="kind", required=True)
    completed = publish_kinds.add_parser(
        "build-completed",
        help="MLOps.BuildCompleted; defaults from Azure DevOps, GitHub Actions, Jenkins, GitLab or Travis variables",
    )
    completed.add_argument(
        "--system", help="the CI system, part of the release id (ado, github, jenkins, gitlab, travis, ...); "
        "default: recognised from its variables, else generic",
    )  # fmt: skip
    completed.add_argument(
        "--build-id",
        help="default: BUILD_BUILDID, GITHUB_RUN_ID, JOB_NAME-BUILD_NUMBER, CI_PIPELINE_ID, TRAVIS_BUILD_ID",
    )
    completed.add_argument(
        "--result", help="succeeded, partiallySucceeded, failed, canceled (or the CI system's word: SUCCESS, "
        "UNSTABLE, FAILURE, ABORTED ...); default: AGENT_JOBSTATUS, CI_JOB_STATUS, TRAVIS_TEST_RESULT",
    )  # fmt: skip
    completed.add_argument("--build-number", help="default: the CI system's run number, else the build id")
    completed.add_argument(
        "--commit", help="default: BUILD_SOURCEVERSION, GITHUB_SHA, GIT_COMMIT, CI_COMMIT_SHA, TRAVIS_COMMIT"
    )
    completed.add_argument(
        "--branch", help="default: BUILD_SOURCEBRANCH, GITHUB_REF, GIT_BRANCH, CI_COMMIT_REF_NAME, TRAVIS_BRANCH"
    )
    completed.add_argument(
        "--repository",
        help="default: BUILD_REPOSITORY_NAME, GITHUB_REPOSITORY, GIT_URL, CI_PROJECT_PATH, TRAVIS_REPO_SLUG",
    )
    completed.add_argument(
        "--requested-for", help="default: BUILD_REQUESTEDFOREMAIL, GITHUB_ACTOR, BUILD_USER_EMAIL, GITLAB_USER_EMAIL"
    )
    completed.add_argument(
        "--requester",
        help="who started it, as a UPN/email the approval policy compares; default: MLOPS_REQUESTER "
        "(Azure DevOps: requestedFor, BUILD_REQUESTEDFOREMAIL, is compared)",
    )
    completed.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    target = completed.add_mutually_exclusive_group()
    target.add_argument("--topic-endpoint", help="default: EVENTGRID_TOPIC_ENDPOINT (key: EVENTGRID_TOPIC_KEY)")
    target.add_argument("--to-host", metavar="URL", help="deliver to a local host's webhook instead (try it locally)")
    completed.set_defaults(handler=cmd_publish_build)

    releases = commands.add_parser("releases", help="list releases")
    releases.add_argument("--json", action="store_true")
    releases.add_argument("--limit", type=int, default=50)
    releases.set_defaults(handler=cmd_releases)

    show = commands.add_parser("show", help="one release and its timeline")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_show)

    approve = commands.add_parser("approve", help="approve a release awaiting approval (signed as you)")
    approve.add_argument("id")
    _add_decider_options(approve)
    approve.add_argument("--comment")
    _add_follow_options(approve)
    approve.set_defaults(handler=cmd_approve)

    reject = commands.add_parser("reject", help="decline a release awaiting approval (signed as you)")
    reject.add_argument("id")
    _add_decider_options(reject)
    reject.add_argument("--comment", required=True)
    reject.set_defaults(handler=cmd_reject)

    add_ui_parsers(commands)
    add_azure_parser(commands)
    add_migrate_parser(commands)

    rollback = commands.add_parser(
        "rollback", help="put the previous (or --to an earlier) version back in production, tested first"
    )
    rollback.add_argument("--to", help="a release id or a model version (default: what served before the live one)")
    rollback.add_argument("--by", help="who asks (default: git config user.email), signed with $MLOPS_HOME's key")
    rollback.add_argument("--comment", required=True, help="why: recorded in the release's timeline")
    rollback.set_defaults(link=None)
    _add_follow_options(rollback)
    rollback.set_defaults(handler=cmd_rollback)

    letters = commands.add_parser("dead-letters", help="events that could not be processed, newest first")
    _add_page_options(letters)
    letters.set_defaults(handler=cmd_dead_letters)

    parked = commands.add_parser(
        "parked", help="events waiting for their release to be ready for them (they expire into dead letters)"
    )
    _add_page_options(parked)
    parked.set_defaults(handler=cmd_parked)
    return parser


def _add_page_options(parser: argparse.ArgumentParser) -> None:
    """A list the host serves a page at a time: how many, and where the page before ended."""
    parser.add_argument("--json", action="store_true")
    limits = f"1..{MAX_PAGE} (default {DEFAULT_PAGE})"
    parser.add_argument("--limit", type=_page_limit, default=DEFAULT_PAGE, help=limits)
    parser.add_argument("--before", metavar="CURSOR", help="the page after the one that printed this cursor")


def _page_limit(text: str) -> int:
    """--limit as the host takes it, refused here (exit 2) rather than by the host."""
    try:
        limit = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= limit <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"{limit} is not within 1..{MAX_PAGE}")
    return limit


def _add_decider_options(parser: argparse.ArgumentParser) -> None:
    """Who decides, proven: signed as --by with $MLOPS_HOME's key, or a signed link's --link token."""
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--by", metavar="IDENTITY", help="sign as this UPN/email; default: git config user.email")
    who.add_argument("--link", metavar="TOKEN", help="a signed link's token (sent as X-MLOps-Link), not signed")


def _add_follow_options(parser: argparse.ArgumentParser) -> None:
    """A promotion goes on after the request: the command follows it unless told not to."""
    parser.add_argument("--no-wait", action="store_true", help="return once the promotion has begun")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to follow it (default 1800)")


def main(argv: list[str] | None = None) -> int:
    """The `mlops` entry point: the handler's exit code, or 1 (and the message) on a HostError or SettingsError."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (HostError, SettingsError) as exc:
        console.print(literal(f"mlops: {exc}", "red"))  # the host's words, printed as they are
        return 1


if __name__ == "__main__":
    sys.exit(main())
