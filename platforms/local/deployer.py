"""Staging and production on this machine: azmlinfsrv processes on 127.0.0.1 behind a stable URL.

Each deployment is a real Azure ML inference server (``InferenceServer``) serving the image's
build context: ``score.py`` and ``model/`` from ``image.location``, on a free port of its own.
Nothing here waits for a server to come up: ``begin_staging`` / ``begin_beside`` start the process
and return an Operation; ``follow`` looks once (process alive? health route 200?).

Production is the production router (``production_router.py``) on a fixed port in front of the
production deployments, each keyed by a release id. A new one starts beside the serving one with no
traffic and is tested on its own port (``direct``); ``begin_traffic`` then replaces
``production.json`` with the weights, and ``follow`` sees the router route that way. The router
counts the requests it sends each deployment (``GET /router``), so a test can prove a deployment
never had live traffic.

Every process (role, key, port, pid, log) is recorded in ``<home>/deployments.json``, read and
written under a lock (a thread lock plus ``flock`` on ``deployments.lock``, because handler
threads and the CLI in another process both call in). A new deployer, e.g. after the host
restarted, finds the running servers there and can stop processes an earlier process started.
Logs are in ``<home>/logs/``.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests

from functions.domain.refs import Endpoint, ImageRef, ModelRef, Operation, Progress
from platforms.common.readiness import http_ok
from platforms.local import production_router
from platforms.local.files import read_json, utc_now, write_json_atomic
from platforms.local.inference_server import DEFAULT_STARTUP_TIMEOUT_S, InferenceServer, free_port
from platforms.local.processes import log_tail, owned_env, pid_alive, stop_process_group

logger = logging.getLogger("mlops.deployer")

STATE_FILE = "deployments.json"
LOCK_FILE = "deployments.lock"
PRODUCTION_FILE = production_router.PRODUCTION_FILE
ROUTER_SCRIPT = Path(production_router.__file__).resolve()
FAULTY_ENTRY_SCRIPT = (Path(__file__).parent / "faulty_score.py").resolve()
ROUTER_STARTUP_TIMEOUT_S = 15.0
HEALTH_PROBE_TIMEOUT_S = 1.0


class DeploymentError(RuntimeError):
    """A deployment could not be made; the message says which and why (with the log's tail)."""


def _empty_state() -> dict[str, Any]:
    return {"router": None, "servers": {}}


def _server_name(role: str, key: str) -> str:
    return f"{role}-{key}"


class LocalDeployer:
    """Deployer port; also ``ensure_router``, ``status``, ``serve_now`` and ``stop_all`` for the CLI."""

    def __init__(
        self,
        home: Path,
        production_port: int = 5101,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        fault: dict[str, Any] | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        # MLOPS_LOCAL_FAULT (validated by the settings): injected into matching production deployments only.
        self.fault = dict(fault or {})
        self.logs = self.home / "logs"
        self.production_port = production_port
        self.startup_timeout_s = startup_timeout_s
        self._lock = threading.Lock()
        # Popen handles of the processes this deployer started, so their exits are reaped.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def production_url(self) -> str:
        return f"http://127.0.0.1:{self.production_port}"

    # ---- staging ----------------------------------------------------------------------
    def begin_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Operation:
        with self._locked_state() as state:
            entry = self._server_for(state, "staging", release_id, image, model)
        return Operation("staging", release_id, {"server": _server_name("staging", release_id), "pid": entry["pid"]})

    def remove_staging(self, release_id: str) -> None:
        with self._locked_state() as state:
            entry = state["servers"].pop(_server_name("staging", release_id), None)
            if entry:
                self._stop(entry)

    # ---- production -------------------------------------------------------------------
    def begin_beside(self, deployment: str, image: ImageRef, model: ModelRef) -> Operation:
        with self._locked_state() as state:
            entry = self._server_for(state, "production", deployment, image, model)
        handle = {"server": _server_name("production", deployment), "pid": entry["pid"]}
        return Operation("beside", deployment, handle)

    def direct(self, deployment: str) -> Endpoint:
        entry = self._read_state()["servers"].get(_server_name("production", deployment))
        if entry is None:
            raise DeploymentError(f"there is no production deployment {deployment}")
        return Endpoint(_server_name("production", deployment), f"{entry['url']}/score", deployment)

    def begin_traffic(self, weights: dict[str, int], mirror: dict[str, int] | None = None) -> Operation:
        with self._locked_state() as state:
            targets = []
            for key, weight in _checked_weights(weights).items():
                entry = self._production_entry(state, key, "route traffic to")
                targets.append({"release_id": key, "port": entry["port"], "url": entry["url"], "weight": weight})
            mirrored = None
            for key, share in _checked_mirror(mirror).items():
                entry = self._production_entry(state, key, "mirror traffic to")
                mirrored = {"release_id": key, "port": entry["port"], "share": share}
            self._start_router_unless_running(state)
            document = {"targets": targets, "mirror": mirrored, "switched_at": utc_now()}
            write_json_atomic(self.home / PRODUCTION_FILE, document)
        expected = {t["release_id"]: t["weight"] for t in targets}
        ports = {t["release_id"]: t["port"] for t in targets}
        logger.info("production traffic set to %s%s", expected, f", mirrored {mirrored}" if mirrored else "")
        handle = {"traffic": expected, "ports": ports, "mirror": mirrored}
        return Operation("traffic", max(expected, key=lambda k: expected[k]), handle)

    def can_mirror(self) -> bool:
        return True  # the production router copies a share of live requests (production_router.py)

    def _production_entry(self, state: dict[str, Any], key: str, doing: str) -> dict[str, Any]:
        entry: dict[str, Any] | None = state["servers"].get(_server_name("production", key))
        if entry is None:
            raise DeploymentError(f"cannot {doing} {key}: there is no production deployment {key}")
        return entry

    def traffic(self) -> dict[str, int]:
        document = read_json(self.home / PRODUCTION_FILE) or {}
        return {str(t["release_id"]): int(t["weight"]) for t in production_router.targets_of(document) if t["weight"]}

    def deployments(self) -> list[str]:
        servers = self._read_state()["servers"].values()
        return [entry["release_id"] for entry in servers if entry["role"] == "production"]

    def remove(self, deployment: str) -> None:
        with self._locked_state() as state:
            if self.traffic().get(deployment):
                raise DeploymentError(f"production deployment {deployment} still has traffic: move it first")
            entry = state["servers"].pop(_server_name("production", deployment), None)
            if entry:
                self._stop(entry)
                logger.info("removed production deployment %s", deployment)

    def production_endpoint(self) -> Endpoint:
        traffic = self.traffic()
        serving = max(traffic, key=lambda k: traffic[k]) if traffic else ""
        return Endpoint("production", f"{self.production_url}/score", serving)

    # ---- following --------------------------------------------------------------------
    def follow(self, operation: Operation) -> Progress:
        if operation.kind == "traffic":
            handle = operation.handle
            return self._follow_traffic(
                dict(handle.get("traffic") or {}), dict(handle.get("ports") or {}), handle.get("mirror")
            )
        entry = self._read_state()["servers"].get(str(operation.handle.get("server")))
        if entry is None:
            return Progress("failed", f"{operation.handle.get('server')} is not deployed (removed meanwhile?)")
        if not self._alive(entry):
            return Progress("failed", f"{_described(entry)} exited during start-up:\n{log_tail(Path(entry['log']))}")
        if http_ok(f"{entry['url']}/", timeout_s=HEALTH_PROBE_TIMEOUT_S):
            name = _server_name(entry["role"], entry["release_id"])
            return Progress(
                "succeeded", f"{_described(entry)} is up", Endpoint(name, f"{entry['url']}/score", entry["release_id"])
            )
        if time.time() > float(entry.get("ready_by") or 0):
            with self._locked_state() as state:  # give its port back: a later begin starts afresh
                if (
                    state["servers"].get(_server_name(entry["role"], entry["release_id"]), {}).get("pid")
                    == entry["pid"]
                ):
                    self._stop(state["servers"].pop(_server_name(entry["role"], entry["release_id"])))
            why = f"{_described(entry)} did not answer its health route within {self.startup_timeout_s:.0f} s"
            return Progress("failed", f"{why}:\n{log_tail(Path(entry['log']))}")
        return Progress("running", f"{_described(entry)} is starting")

    def _follow_traffic(
        self, expected: dict[str, int], ports: dict[str, int], mirror: dict[str, Any] | None = None
    ) -> Progress:
        info = self._router_info()
        if info is None:
            router = self._read_state()["router"]
            if router and not pid_alive(router.get("pid")):
                return Progress("failed", f"the production router exited:\n{log_tail(self.logs / 'router.log')}")
            return Progress("running", "the production router is starting")
        targets = [t for t in info.get("targets") or [] if t.get("weight")]
        routed = {str(t["release_id"]): int(t["weight"]) for t in targets}
        routed_ports = {str(t["release_id"]): int(t["port"]) for t in targets}
        if routed != expected or (ports and routed_ports != ports):
            return Progress("running", f"the router routes {routed or 'nothing'}, not yet {expected}")
        if _mirrored(info.get("mirror")) != _mirrored(mirror):
            return Progress("running", f"the router mirrors {info.get('mirror')}, not yet {mirror}")
        serving = max(expected, key=lambda k: expected[k])
        return Progress(
            "succeeded",
            f"production routes {expected}",
            Endpoint("production", f"{self.production_url}/score", serving),
        )

    def serve_now(self, deployment: str, image: ImageRef, model: ModelRef) -> Endpoint:
        """For the CLI (`mlops up` restoring production): deploy and route all traffic, waiting for both.
        The app never calls this; it begins operations and the follow timer looks at them."""
        self._until_done(self.begin_beside(deployment, image, model), deployment)
        self._until_done(self.begin_traffic({deployment: 100}), deployment)
        return self.production_endpoint()

    def _until_done(self, operation: Operation, deployment: str) -> None:
        deadline = time.monotonic() + self.startup_timeout_s + ROUTER_STARTUP_TIMEOUT_S
        while not (progress := self.follow(operation)).finished and time.monotonic() < deadline:
            time.sleep(0.1)
        if progress.state != "succeeded":
            raise DeploymentError(f"could not serve {deployment}: {progress.detail}")

    def request_counts(self) -> dict[str, int]:
        """How many scoring requests the router has sent each deployment since it started."""
        info = self._router_info() or {}
        return {str(k): int(v) for k, v in (info.get("counts") or {}).items()}

    def ensure_router(self) -> str:
        """Start the production router if it is not running; return the production scoring URL."""
        with self._locked_state() as state:
            self._ensure_router(state)
        return f"{self.production_url}/score"

    def status(self) -> dict[str, Any]:
        """Every recorded process with whether it is running (pid alive and health check passing)."""
        # The state file is replaced atomically, so reading it needs no lock.
        state = self._read_state()
        router = state["router"]
        return {
            "production_url": f"{self.production_url}/score",
            "traffic": self.traffic(),
            "router": {**router, "running": self._router_running(router)} if router else None,
            "servers": [{**entry, "running": self._running(entry)} for entry in state["servers"].values()],
        }

    def recorded_pids(self) -> set[int]:
        """The pids (process-group leaders) of every recorded server and of the router."""
        state = self._read_state()
        entries = [*state["servers"].values(), *([state["router"]] if state["router"] else [])]
        return {int(entry["pid"]) for entry in entries if entry.get("pid")}

    def dead_records(self) -> list[str]:
        """Recorded servers whose process is gone and that have no traffic (a host killed while it stopped
        one leaves its record). One with traffic is not among them: production needs it back, and
        begin_beside relaunches a dead one."""
        traffic = self.traffic()
        return [
            name
            for name, entry in self._read_state()["servers"].items()
            if not self._alive(entry) and not (entry["role"] == "production" and traffic.get(entry["release_id"]))
        ]

    def forget_dead(self) -> list[str]:
        """Drop the dead records (``dead_records``); the names dropped."""
        dead = self.dead_records()
        with self._locked_state() as state:
            for name in dead:
                state["servers"].pop(name, None)
        return dead

    def staging_releases(self) -> list[str]:
        """The releases with a staging server recorded."""
        return [e["release_id"] for e in self._read_state()["servers"].values() if e["role"] == "staging"]

    def stop_all(self) -> list[str]:
        """Stop every server and the router (also those an earlier process started); return what was running."""
        stopped: list[str] = []
        with self._locked_state() as state:
            for name, entry in state["servers"].items():
                if self._stop(entry):
                    stopped.append(name)
            router = state["router"] or self._unrecorded_router()
            if router and self._stop(router):
                stopped.append("router")
            state.clear()
            state.update(_empty_state())
            with suppress(FileNotFoundError):
                (self.home / PRODUCTION_FILE).unlink()
        logger.info("stopped %s", ", ".join(stopped) or "nothing (nothing was running)")
        return stopped

    @contextmanager
    def _locked_state(self) -> Iterator[dict[str, Any]]:
        """The state document, written back when the block ends, also when it raises.

        Callers change the state only after each step succeeds, so what is written matches
        the processes that exist (a server started before a later step failed stays recorded).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.home / LOCK_FILE, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            state = read_json(self.home / STATE_FILE, default=None) or _empty_state()
            try:
                yield state
            finally:
                write_json_atomic(self.home / STATE_FILE, state)

    def _read_state(self) -> dict[str, Any]:
        # The state file is replaced atomically, so reading it needs no lock.
        state = read_json(self.home / STATE_FILE, default=None) or _empty_state()
        state.setdefault("servers", {})
        state.setdefault("router", None)
        return state

    def _server_for(
        self, state: dict[str, Any], role: str, key: str, image: ImageRef, model: ModelRef
    ) -> dict[str, Any]:
        """The key's server for this image, starting or running, or a new one (replacing a dead or outdated one)."""
        name = _server_name(role, key)
        entry = state["servers"].get(name)
        if entry and entry["image"]["digest"] == image.digest and self._alive(entry):
            return dict(entry)
        if entry:
            self._stop(entry)
            del state["servers"][name]
        entry = self._launch_server(role, key, image, model)
        state["servers"][name] = entry
        return entry

    def _launch_server(self, role: str, key: str, image: ImageRef, model: ModelRef) -> dict[str, Any]:
        context = Path(image.location)
        if not (context / "score.py").is_file() or not (context / "model").is_dir():
            raise DeploymentError(
                f"image {image.reference} has no build context at {context!s} (score.py and model/ expected)"
            )
        port = free_port()
        log = self.logs / f"{role}-{_file_name_part(key)}-{port}.log"
        entry_script, env = context / "score.py", owned_env(self.home, {})
        if role == "production" and self.fault and fnmatch.fnmatchcase(key, self.fault["deployments"]):
            # A documented test setting, never on by default: the image's score.py behind a faulty wrapper.
            entry_script = FAULTY_ENTRY_SCRIPT
            env |= {"MLOPS_FAULT_SCORE_SCRIPT": str(context / "score.py"), "MLOPS_FAULT": json.dumps(self.fault)}
            logger.warning("production deployment %s gets the injected fault %s (MLOPS_LOCAL_FAULT)", key, self.fault)
        server = InferenceServer(entry_script, context / "model", log, port=port, env=env).launch()
        assert server.process is not None  # launch() started it
        self._children[server.process.pid] = server.process
        logger.info("%s server for %s starting on %s (pid %d)", role, key, server.url, server.process.pid)
        return {
            "role": role,
            "release_id": key,
            "port": port,
            "pid": server.process.pid,
            "url": server.url,
            "log": str(log),
            "started_at": utc_now(),
            "ready_by": time.time() + self.startup_timeout_s,
            "image": {
                "repository": image.repository,
                "tag": image.tag,
                "digest": image.digest,
                "location": str(context),
            },
            "model": {"name": model.name, "version": model.version, "location": model.location},
            "fault": entry_script == FAULTY_ENTRY_SCRIPT,
        }

    def _alive(self, entry: dict[str, Any]) -> bool:
        child = self._children.get(entry["pid"])
        return child.poll() is None if child is not None else pid_alive(entry["pid"])

    def _running(self, entry: dict[str, Any]) -> bool:
        return self._alive(entry) and http_ok(f"http://127.0.0.1:{entry['port']}/")

    def _stop(self, entry: dict[str, Any]) -> bool:
        return stop_process_group(entry["pid"], self._children.pop(entry["pid"], None))

    def _router_info(self) -> dict[str, Any] | None:
        try:
            response = requests.get(f"{self.production_url}{production_router.ROUTER_PATH}", timeout=1)
            info = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        return info if isinstance(info, dict) and info.get("home") == str(self.home) else None

    def _router_running(self, entry: dict[str, Any]) -> bool:
        info = self._router_info()
        return info is not None and info.get("pid") == entry["pid"]

    def _unrecorded_router(self) -> dict[str, Any] | None:
        """A router for this home that answers on the port although the state file lost it."""
        info = self._router_info()
        return {"role": "router", "pid": info["pid"], "port": self.production_port} if info else None

    def _ensure_router(self, state: dict[str, Any]) -> None:
        recorded = state["router"]
        if recorded and self._router_running(recorded):
            return
        if recorded:
            self._stop(recorded)
        state["router"] = self._unrecorded_router() or self._start_router()

    def _start_router_unless_running(self, state: dict[str, Any]) -> None:
        """A router that is running or starting stays; else one is launched (the traffic follow waits for it)."""
        recorded = state["router"]
        if recorded and (self._router_running(recorded) or pid_alive(recorded.get("pid"))):
            return
        state["router"] = self._unrecorded_router() or self._launch_router()

    def _launch_router(self) -> dict[str, Any]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / "router.log"
        command = [sys.executable, str(ROUTER_SCRIPT), "--home", str(self.home), "--port", str(self.production_port)]
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                command,
                cwd=self.home,
                env=owned_env(self.home, {**os.environ, "PYTHONUNBUFFERED": "1"}),
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the caller's terminal session, like the servers
            )
        self._children[process.pid] = process
        logger.info("production router starting on %s (pid %d)", self.production_url, process.pid)
        return {
            "role": "router",
            "pid": process.pid,
            "port": self.production_port,
            "log": str(log),
            "started_at": utc_now(),
        }

    def _start_router(self) -> dict[str, Any]:
        """Launch the router and wait until it answers (the CLI's `mlops up`; the app only launches it)."""
        entry = self._launch_router()
        process = self._children[entry["pid"]]
        deadline = time.monotonic() + ROUTER_STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._children.pop(process.pid, None)
                raise DeploymentError(
                    f"the production router exited with code {process.returncode} on start-up:\n"
                    f"{log_tail(Path(entry['log']))}"
                )
            if self._router_running(entry):
                logger.info("production router on %s (pid %d)", self.production_url, process.pid)
                return entry
            time.sleep(0.05)
        self._stop(entry)
        raise DeploymentError(
            f"the production router did not answer on {self.production_url} within "
            f"{ROUTER_STARTUP_TIMEOUT_S:.0f} s:\n{log_tail(Path(entry['log']))}"
        )


def _checked_weights(weights: dict[str, int]) -> dict[str, int]:
    """Weights as the router takes them: whole percents 0..100 summing to 100; zeros dropped."""
    if not weights:
        raise DeploymentError("traffic weights are empty: name at least one deployment")
    for key, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise DeploymentError(f"traffic weight of {key} must be a whole percent 0..100, not {weight!r}")
    if sum(weights.values()) != 100:
        raise DeploymentError(f"traffic weights must sum to 100, not {sum(weights.values())}: {weights}")
    return {key: weight for key, weight in weights.items() if weight}


def _checked_mirror(mirror: dict[str, int] | None) -> dict[str, int]:
    """A mirror as the router takes it: at most one deployment, a whole percent 1..100 (0 or none: no mirror)."""
    wanted = {key: share for key, share in (mirror or {}).items() if share}
    if len(wanted) > 1:
        raise DeploymentError(f"production mirrors to one deployment at most, not {sorted(wanted)}")
    for key, share in wanted.items():
        if isinstance(share, bool) or not isinstance(share, int) or not 0 < share <= 100:
            raise DeploymentError(f"the mirrored share of {key} must be a whole percent 1..100, not {share!r}")
    return wanted


def _mirrored(mirror: Any) -> tuple[str, int] | None:
    """Who gets which share of mirrored requests, as the router and the handle say it."""
    if not isinstance(mirror, dict) or not mirror.get("release_id"):
        return None
    return str(mirror["release_id"]), int(mirror.get("share") or 0)


def _described(entry: dict[str, Any]) -> str:
    return f"{entry['role']} server for {entry['release_id']} (port {entry['port']}, pid {entry['pid']})"


def _file_name_part(text: str) -> str:
    """``text`` for a log file name: letters, digits, '_', '.' and '-' kept, at most 60 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:60] or "release"
