"""`mlops up`, `mlops down`, `mlops demo`: start and stop the local host and the endpoints it started.

`up` and `demo` put the app settings function_app.py binds by name (MLOPS_RECONCILE_SCHEDULE) in the
environment when unset (devhost/settings.py), and `up` refuses to start when the app does not index.
The host's pid is kept in $MLOPS_HOME/host.pid, so `down` can stop a host started elsewhere.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from devhost.client import HostClient
from devhost.console import console
from devhost.settings import REPO_ROOT, apply_app_setting_defaults
from functions.settings import Settings
from platforms.local.events import UNDELIVERED_FILE
from platforms.local.processes import OwnedProcess, owned_env


def settings_for_port(port: int) -> Settings:
    """Point the app (its event bus and its approval links) at the port we serve on."""
    os.environ.setdefault("MLOPS_HOST_URL", f"http://127.0.0.1:{port}")
    return Settings.from_env()


def _pid_file(settings: Settings) -> Path:
    """Where `up` records its pid, so `down` (another process) can find the host it started."""
    return settings.home / "host.pid"


# ---- up / down -------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    """`mlops up [--port N] [--detach]`: serve function_app.py on 127.0.0.1 until Ctrl-C (or in the background)."""
    apply_app_setting_defaults()  # before --detach too: the background host inherits the environment
    settings = settings_for_port(args.port)
    client = HostClient(settings.host_url)
    if client.healthy():
        console.print(f"a host is already serving at {settings.host_url}")
        return 0
    if args.detach:
        return start_detached(settings, args.port)
    from devhost.host import load_function_app, serve
    from devhost.indexing import check_indexing, function_name, indexed_functions, trigger_of

    if not _port_free(args.port):
        console.print(f"[red]127.0.0.1:{args.port} is in use by another program; choose another --port[/]")
        return 1
    os.chdir(REPO_ROOT)
    app = load_function_app(str(REPO_ROOT / "function_app.py"))
    # Refuse before touching any state: a bad app setting (say, MLOPS_RECONCILE_SCHEDULE) is named here.
    if problems := check_indexing(app):
        console.print("[red]mlops: function_app.py does not index:[/]")
        for problem in problems:
            console.print(f"  {problem}", markup=False, soft_wrap=True)
        return 1
    settings.home.mkdir(parents=True, exist_ok=True)
    if live_host := _live_host_of(settings):
        console.print(f"[red]a host (pid {live_host}) already serves {settings.home}; `mlops down` stops it[/]")
        return 1
    # SIGTERM (and a closed terminal) must clean up as Ctrl-C does: uvicorn re-raises the signal once it
    # has shut down, and the default action of SIGTERM ends the process before the finally below runs.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_cleanly)
    stop_watching = threading.Event()
    try:
        _clean_up_after_dead_host(settings)
        _pid_file(settings).write_text(str(os.getpid()))
        _restore_production(settings)
        console.print(f"[bold]mlops host[/] on {settings.host_url} (state in {settings.home}); Ctrl-C stops it")
        for function in indexed_functions(app):
            console.print(f"  {function_name(function)}: {trigger_of(function).get_binding_name()}")
        from devhost.commands_data import start_watching

        if start_watching(settings, stop_watching) is not None and settings.data_trigger is not None:
            folder = settings.home / settings.data_trigger.container
            console.print(f"  new training data: CSV files put under {folder}/{settings.data_trigger.prefix}",
                          markup=False)  # fmt: skip
        # An event the host cannot hand to the app lands where the local bus records what it gave up on.
        serve(app, host="127.0.0.1", port=args.port, dead_letters=settings.home / UNDELIVERED_FILE)
    finally:  # Ctrl-C, SIGTERM, SIGHUP: the host stops what it started, training jobs included
        # A second signal (a closed terminal sends SIGHUP twice; `mlops down` may follow up) must not
        # cut the cleanup short.
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)
        stop_watching.set()
        _stop_everything(settings)
        _pid_file(settings).unlink(missing_ok=True)
    return 0


def _live_host_of(settings: Settings) -> int | None:
    """The pid of another host that serves this $MLOPS_HOME now (two would stop each other's servers)."""
    pid_file = _pid_file(settings)
    pid = _host_pid(pid_file) if pid_file.exists() else None
    return pid if pid and pid != os.getpid() else None


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _clean_up_after_dead_host(settings: Settings) -> None:
    """Before serving: stop what a host that died without stopping (kill -9, a crash) left unrecorded.

    Recorded servers and running training jobs stay: the releases they belong to carry on with them
    (the start-up reconcile pass retries what the dead host held at once)."""
    from platforms.local.orphans import stop_orphans

    pid_file = _pid_file(settings)
    if pid_file.exists():  # cmd_up refused to start beside a live host: this one is gone
        console.print(f"the previous host (pid {pid_file.read_text().strip()}) ended without stopping; cleaning up")
        pid_file.unlink(missing_ok=True)
    for process in stop_orphans(settings.home):
        console.print(f"  stopped pid {process.pid}, which no record accounts for: {process.command}", markup=False)
    _remove_unneeded_staging(settings)


def _remove_unneeded_staging(settings: Settings) -> None:
    """Staging servers of releases past staging (live or ended): a host killed between a release going
    live and removing its staging leaves one running that no step will remove. And records of dead servers."""
    from functions.bootstrap import release_store
    from functions.domain.release import FINAL_STATES, State
    from platforms.local.deployer import LocalDeployer

    deployer = LocalDeployer(settings.home, production_port=settings.production_port)
    dead = deployer.forget_dead()
    if dead:
        console.print(f"  forgot {len(dead)} record(s) of server(s) no longer running: {', '.join(dead)}", markup=False)
    store = release_store(settings)
    for release_id in deployer.staging_releases():
        release = store.get(release_id)
        if release is None or release.state in FINAL_STATES | {State.LIVE}:
            deployer.remove_staging(release_id)
            why = release.state.value if release else "no such release"
            console.print(f"  removed the staging server of {release_id} ({why})", markup=False)


def _restore_production(settings: Settings) -> None:
    """After `mlops down`, the live release's endpoint is gone: bring it back at the stable URL."""
    import requests

    from functions.bootstrap import build_orchestrator
    from functions.domain.lineage import image_of, model_of
    from platforms.local.deployer import LocalDeployer

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
    deployer = orchestrator.ports.deployer
    assert isinstance(deployer, LocalDeployer)  # the local platform's (settings.platform is "local" here)
    with console.status(f"restoring production: {release.id}…"):
        endpoint = deployer.serve_now(release.deployment_key, image_of(release), model_of(release))
    console.print(f"production restored: {release.id} at {endpoint.scoring_url}")


def start_detached(settings: Settings, port: int) -> int:
    """`mlops up` in a new session, logging to $MLOPS_HOME/logs/host.log; 0 once it answers its health check."""
    log_path = settings.home / "logs" / "host.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "up", "--port", str(port)],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=owned_env(settings.home, {**os.environ, "MLOPS_HOST_URL": settings.host_url,
                                          "MLOPS_HOME": str(settings.home)}),
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


def cmd_down(args: argparse.Namespace | None = None) -> int:
    """`mlops down`: stop the host named in the pid file, every endpoint process, then whatever else of
    $MLOPS_HOME still runs (training jobs; processes a host killed with SIGKILL left unrecorded).

    args is unused (devhost/demo.py calls it without); the parameter makes it a command handler.
    """
    settings = Settings.from_env()
    pid_file = _pid_file(settings)
    if pid_file.exists():
        pid = _host_pid(pid_file)
        if pid:
            _terminate(pid)
            console.print(f"host (pid {pid}) stopped")
        pid_file.unlink(missing_ok=True)
    stopped, rest = _stop_everything(settings)
    console.print(f"stopped {len(stopped)} endpoint process(es)" if stopped else "no endpoint processes running")
    if rest:
        groups = len({process.pgid for process in rest})
        console.print(f"stopped {len(rest)} more process(es) of {settings.home} in {groups} group(s)", markup=False)
    return 0


def _port_free(port: int) -> bool:
    """Whether the host could listen on 127.0.0.1:port now, checked the way uvicorn will bind it.

    uvicorn.run(host, port) listens through asyncio's create_server, which sets SO_REUSEADDR on POSIX.
    The probe sets it too: without it, the TIME_WAIT connections a host leaves for about a minute after
    it stops make the port look taken, though uvicorn would bind it fine. A live listener still counts.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name == "posix" and sys.platform != "cygwin":  # asyncio's own condition for reuse_address
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    """SIGTERM, then wait up to timeout_s for the process to exit (reaping it if it is our own child)."""
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


def _stop_everything(settings: Settings) -> tuple[list[str], list[OwnedProcess]]:
    """Stop every endpoint server and the router under $MLOPS_HOME (their records cleared), then every
    other process of the home (training jobs, whatever lost its record): the names of the endpoints
    that ran, and the other processes."""
    from platforms.local.deployer import LocalDeployer
    from platforms.local.processes import stop_owned

    endpoints = LocalDeployer(settings.home, production_port=settings.production_port).stop_all()
    return endpoints, stop_owned(settings.home)


# ---- demo --------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """`mlops demo [--port N] [--stop] [--data breast_cancer]`: devhost/demo.py (or demo_classifier.py)
    against a fresh detached host."""
    from devhost.demo import run_demo
    from devhost.demo_classifier import DATA, run_classifier_demo

    apply_app_setting_defaults()  # the demo's host is `mlops up --detach`: it inherits them
    if args.data == DATA:
        return run_classifier_demo(port=args.port, keep_running=not args.stop)
    return run_demo(port=args.port, keep_running=not args.stop)
