"""`mlops`: run the release loop on this machine and drive it.

mlops up [--port 7071] [--detach]    serve function_app.py like Core Tools (127.0.0.1)
mlops down                           stop the host and every process it started
mlops demo                           the whole release loop, end to end
mlops trigger build [--commit SHA] [--param key=value ...]
mlops publish build-completed --build-id ID --result succeeded [...]   what CI sends to the custom topic
mlops releases [--json] | show ID [--json] | dead-letters [--json]
mlops approve ID --by NAME [--comment TEXT] | reject ID --by NAME --comment TEXT
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from devhost.azure_bootstrap import add_parser as add_azure_parser
from devhost.client import HostClient, HostError
from devhost.settings import REPO_ROOT
from functions.settings import Settings, SettingsError

if TYPE_CHECKING:
    from functions.ports import Publisher

console = Console(highlight=False)
DEFAULT_PORT = 7071


def _settings_for_port(port: int) -> Settings:
    """Point the app (its event bus and its approval links) at the port we serve on."""
    os.environ.setdefault("MLOPS_HOST_URL", f"http://127.0.0.1:{port}")
    return Settings.from_env()


def _pid_file(settings: Settings) -> Path:
    return settings.home / "host.pid"


# ---- up / down -------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    settings = _settings_for_port(args.port)
    client = HostClient(settings.host_url)
    if client.healthy():
        console.print(f"a host is already serving at {settings.host_url}")
        return 0
    if args.detach:
        return _start_detached(settings, args.port)
    from devhost.host import load_function_app, serve

    if not _port_free(args.port):
        console.print(f"[red]127.0.0.1:{args.port} is in use by another program; choose another --port[/]")
        return 1
    settings.home.mkdir(parents=True, exist_ok=True)
    _pid_file(settings).write_text(str(os.getpid()))
    os.chdir(REPO_ROOT)
    _restore_production(settings)
    app = load_function_app(str(REPO_ROOT / "function_app.py"))
    console.print(f"[bold]mlops host[/] on {settings.host_url} (state in {settings.home}); Ctrl-C stops it")
    for function in app.get_functions():
        console.print(f"  {function.get_function_name()}: {function.get_trigger().get_binding_name()}")
    try:
        serve(app, host="127.0.0.1", port=args.port)
    finally:
        _pid_file(settings).unlink(missing_ok=True)
        _stop_deployments(settings)
    return 0


def _restore_production(settings: Settings) -> None:
    """After `mlops down`, the live release's endpoint is gone: bring it back at the stable URL."""
    import requests

    from functions.bootstrap import build_orchestrator
    from functions.orchestrator import image_of, model_of

    orchestrator = build_orchestrator(settings)
    live = orchestrator.ports.store.list(limit=1, states=["live"])
    if not live:
        return
    endpoint_base = f"http://127.0.0.1:{settings.production_port}"
    try:
        if requests.get(f"{endpoint_base}/", timeout=2).status_code == 200:
            return
    except requests.RequestException:
        pass
    release = live[0]
    with console.status(f"restoring production: {release.id}…"):
        endpoint = orchestrator.ports.deployer.deploy_production(release.id, image_of(release), model_of(release))
    console.print(f"production restored: {release.id} at {endpoint.scoring_url}")


def _start_detached(settings: Settings, port: int) -> int:
    log_path = settings.home / "logs" / "host.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "up", "--port", str(port)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "MLOPS_HOST_URL": settings.host_url, "MLOPS_HOME": str(settings.home)},
        )  # fmt: skip
    client = HostClient(settings.host_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            console.print(f"[red]host exited with code {process.returncode}; see {log_path}[/]")
            return 1
        if client.healthy():
            console.print(f"host serving at {settings.host_url} (pid {process.pid}, log {log_path})")
            return 0
        time.sleep(0.2)
    console.print(f"[red]host did not become healthy within 60 s; see {log_path}[/]")
    return 1


def cmd_down(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    pid_file = _pid_file(settings)
    if pid_file.exists():
        pid = _host_pid(pid_file)
        if pid:
            _terminate(pid)
            console.print(f"host (pid {pid}) stopped")
        pid_file.unlink(missing_ok=True)
    stopped = _stop_deployments(settings)
    console.print(f"stopped {len(stopped)} endpoint process(es)" if stopped else "no endpoint processes running")
    return 0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _host_pid(pid_file: Path) -> int | None:
    """The pid in the file if that process is still our host; a stale file must not kill a stranger."""
    text = pid_file.read_text().strip()
    if not text.isdecimal() or int(text) <= 0:
        return None
    try:
        command_line = Path(f"/proc/{text}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return None
    return int(text) if b"devhost" in command_line or b"mlops" in command_line else None


def _terminate(pid: int, timeout_s: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child (mlops demo): reap it
                return
        except ChildProcessError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)


def _stop_deployments(settings: Settings) -> list[str]:
    from platforms.local.deployer import LocalDeployer

    return LocalDeployer(settings.home, production_port=settings.production_port).stop_all()


# ---- driving a running host -------------------------------------------------------------
def build_completed_event(commit: str | None, params: dict[str, Any], build_id: str | None = None) -> dict[str, Any]:
    from platforms.local.events import build_event

    build_id = build_id or f"local-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:4]}"
    data: dict[str, Any] = {
        "buildId": build_id,
        "buildNumber": build_id,
        "result": "succeeded",
        "sourceVersion": commit or _git_head(),
        "sourceBranch": "refs/heads/main",
        "repository": REPO_ROOT.name,
        "requestedFor": os.environ.get("USER", "local"),
    }
    if params:
        data["parameters"] = params
    return build_event("MLOps.BuildCompleted", f"builds/{build_id}", data)


def _git_head() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs as train's ``--param`` reads them (values are JSON when they parse)."""
    from ml_pipeline.errors import PipelineInputError
    from ml_pipeline.train import parse_overrides

    try:
        return parse_overrides(pairs)
    except PipelineInputError as exc:
        raise SystemExit(f"mlops: {exc}") from None


def cmd_trigger(args: argparse.Namespace) -> int:
    from functions.domain.ids import release_id_for_build

    event = build_completed_event(args.commit, parse_params(args.param), args.build_id)
    HostClient().deliver("on_build_event", [event])
    release_id = release_id_for_build(event["data"]["buildId"])
    console.print(f"build {event['data']['buildId']} delivered; release [bold]{release_id}[/]")
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
                       ("requestedFor", "requested_for")):  # fmt: skip
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


def cmd_releases(args: argparse.Namespace) -> int:
    releases = HostClient().releases(limit=args.limit)
    if args.json:
        print(json.dumps(releases, indent=2))
        return 0
    table = Table(title="Releases")
    for column in ("id", "state", "trigger", "candidate mse", "gate", "updated"):
        table.add_column(column)
    for release in releases:
        metrics = (release.get("candidate") or {}).get("metrics") or {}
        gate = release.get("gate") or {}
        table.add_row(
            release["id"], _state(release["state"]), _trigger(release["trigger"]),
            f"{metrics['mse']:.1f}" if "mse" in metrics else "",
            ("promote" if gate.get("promote") else "reject") if gate else "",
            release.get("updated_at", "")[:16].replace("T", " "),
        )  # fmt: skip
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    release = HostClient().release(args.id)
    if args.json:
        print(json.dumps(release, indent=2))
        return 0
    console.print(f"[bold]{release['id']}[/] {_state(release['state'])}  {_trigger(release['trigger'])}")
    if release.get("gate"):
        console.print(f"gate: {release['gate']['reason']}")
    if release.get("error"):
        console.print(f"[red]error: {release['error']}[/]")
    table = Table(title="Timeline")
    for column in ("at", "step", "detail"):
        table.add_column(column)
    for entry in release["timeline"]:
        table.add_row(entry["at"], entry["step"], entry["detail"])
    console.print(table)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    release = HostClient().approve(args.id, args.by, args.comment or "")
    console.print(f"{release['id']}: {_state(release['state'])}")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    release = HostClient().reject(args.id, args.by, args.comment)
    console.print(f"{release['id']}: {_state(release['state'])}")
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    letters = HostClient().dead_letters()
    if args.json:
        print(json.dumps(letters, indent=2))
        return 0
    table = Table(title="Dead letters")
    for column in ("received", "function", "event id", "type", "reason"):
        table.add_column(column)
    for letter in letters:
        table.add_row(letter["received_at"], letter["function"], letter["event_id"], letter["event_type"],
                      letter["reason"])  # fmt: skip
    console.print(table)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from devhost.demo import run_demo

    return run_demo(port=args.port, keep_running=not args.stop)


def _state(state: str) -> str:
    colour = {"live": "green", "awaiting_approval": "cyan", "rejected": "yellow", "failed": "red",
              "rolled_back": "red", "declined": "yellow", "expired": "yellow"}.get(state, "white")  # fmt: skip
    return f"[{colour}]{state}[/]"


def _trigger(trigger: dict[str, Any]) -> str:
    if trigger.get("kind") == "build":
        params = f" {json.dumps(trigger['parameters'])}" if trigger.get("parameters") else ""
        return f"build {trigger.get('buildNumber') or trigger.get('buildId')}{params}"
    return str(trigger.get("kind"))


def build_parser() -> argparse.ArgumentParser:
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
    demo.set_defaults(handler=cmd_demo)

    trigger = commands.add_parser("trigger", help="send an event as CI would")
    trigger_kinds = trigger.add_subparsers(dest="kind", required=True)
    build = trigger_kinds.add_parser("build", help="MLOps.BuildCompleted")
    build.add_argument("--commit")
    build.add_argument("--build-id")
    build.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    build.set_defaults(handler=cmd_trigger)

    publish = commands.add_parser("publish", help="send an event to the Event Grid custom topic, as CI does")
    publish_kinds = publish.add_subparsers(dest="kind", required=True)
    completed = publish_kinds.add_parser(
        "build-completed", help="MLOps.BuildCompleted; defaults from Azure DevOps / GitHub Actions variables"
    )
    completed.add_argument("--build-id", help="default: BUILD_BUILDID or GITHUB_RUN_ID")
    completed.add_argument("--result", help="succeeded, partiallySucceeded, failed, canceled; default: AGENT_JOBSTATUS")
    completed.add_argument("--build-number", help="default: BUILD_BUILDNUMBER or GITHUB_RUN_NUMBER, else the build id")
    completed.add_argument("--commit", help="default: BUILD_SOURCEVERSION or GITHUB_SHA")
    completed.add_argument("--branch", help="default: BUILD_SOURCEBRANCH or GITHUB_REF")
    completed.add_argument("--repository", help="default: BUILD_REPOSITORY_NAME or GITHUB_REPOSITORY")
    completed.add_argument("--requested-for", help="default: BUILD_REQUESTEDFOREMAIL or GITHUB_ACTOR")
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

    approve = commands.add_parser("approve", help="approve a release awaiting approval")
    approve.add_argument("id")
    approve.add_argument("--by", required=True)
    approve.add_argument("--comment")
    approve.set_defaults(handler=cmd_approve)

    reject = commands.add_parser("reject", help="decline a release awaiting approval")
    reject.add_argument("id")
    reject.add_argument("--by", required=True)
    reject.add_argument("--comment", required=True)
    reject.set_defaults(handler=cmd_reject)

    add_azure_parser(commands)

    letters = commands.add_parser("dead-letters", help="events that could not be processed")
    letters.add_argument("--json", action="store_true")
    letters.set_defaults(handler=cmd_dead_letters)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (HostError, SettingsError) as exc:
        console.print(f"[red]mlops: {exc}[/]")
        return 1


if __name__ == "__main__":
    sys.exit(main())
