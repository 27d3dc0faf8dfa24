"""Staging and production on this machine: azmlinfsrv processes on 127.0.0.1 behind a stable URL.

Each deployment is a real Azure ML inference server (``InferenceServer``) serving the image's
build context: ``score.py`` and ``model/`` from ``image.location``. Staging gets a free port
per release. Production is blue/green behind the production router
(``production_router.py``) on a fixed port: a new version starts beside the current one,
is health-checked, then the router is switched to it by replacing ``production.json``; the
previous version keeps running for rollback, older ones are stopped.

Every process (role, release, port, pid, log) is recorded in ``<home>/deployments.json``,
read and written under a lock (a thread lock plus ``flock`` on ``deployments.lock``, because
handler threads and the CLI in another process both call in). A new deployer, e.g. after
the host restarted, finds the running servers there (pid alive and health check passing)
and can stop processes an earlier process started. Logs are in ``<home>/logs/``.
"""

from __future__ import annotations

import fcntl
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

from functions.domain.refs import Endpoint, ImageRef, ModelRef
from platforms.common.readiness import http_ok
from platforms.local import production_router
from platforms.local.files import read_json, utc_now, write_json_atomic
from platforms.local.inference_server import (
    DEFAULT_STARTUP_TIMEOUT_S,
    InferenceServer,
    InferenceServerError,
    free_port,
)
from platforms.local.processes import log_tail, pid_alive, stop_process_group

logger = logging.getLogger("mlops.deployer")

STATE_FILE = "deployments.json"
LOCK_FILE = "deployments.lock"
PRODUCTION_FILE = production_router.PRODUCTION_FILE
ROUTER_SCRIPT = Path(production_router.__file__).resolve()
ROUTER_STARTUP_TIMEOUT_S = 15.0
SWITCH_TIMEOUT_S = 5.0


class DeploymentError(RuntimeError):
    """A deployment could not be made; the message says which and why (with the log's tail)."""


def _empty_state() -> dict[str, Any]:
    return {"router": None, "servers": {}, "production": {"current": None, "previous": None}}


class LocalDeployer:
    """Deployer port; also ``ensure_router``, ``status`` and ``stop_all`` for ``mlops up/status/down``."""

    def __init__(
        self, home: Path, production_port: int = 5101, startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    ) -> None:
        self.home = Path(home).resolve()
        self.logs = self.home / "logs"
        self.production_port = production_port
        self.startup_timeout_s = startup_timeout_s
        self._lock = threading.Lock()
        # Popen handles of the processes this deployer started, so their exits are reaped.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def production_url(self) -> str:
        return f"http://127.0.0.1:{self.production_port}"

    def deploy_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Endpoint:
        with self._locked_state() as state:
            entry = self._server_for(state, "staging", release_id, image, model)
        return Endpoint(f"staging-{release_id}", f"{entry['url']}/score", release_id)

    def remove_staging(self, release_id: str) -> None:
        with self._locked_state() as state:
            entry = state["servers"].pop(f"staging-{release_id}", None)
            if entry:
                self._stop(entry)

    def deploy_production(self, release_id: str, image: ImageRef, model: ModelRef) -> Endpoint:
        with self._locked_state() as state:
            self._ensure_router(state)
            entry = self._server_for(state, "production", release_id, image, model)
            self._switch(entry)
            production = state["production"]
            if production["current"] != release_id:
                production["previous"], production["current"] = production["current"], release_id
            keep = {production["current"], production["previous"]}
            for name, other in list(state["servers"].items()):
                if other["role"] == "production" and other["release_id"] not in keep:
                    self._stop(other)
                    del state["servers"][name]
        logger.info("production is release %s (previous: %s)", release_id, production["previous"])
        return self._production_endpoint(release_id)

    def rollback_production(self, release_id: str) -> Endpoint | None:
        with self._locked_state() as state:
            production = state["production"]
            current, previous = production["current"], production["previous"]
            if current != release_id:
                # Already rolled back (a retried call) or never live: only make sure it is not left running.
                if release_id != previous and (failed := state["servers"].pop(f"production-{release_id}", None)):
                    self._stop(failed)
                return self._production_endpoint(current) if current else None
            if previous is None:
                return None
            recorded = state["servers"].get(f"production-{previous}")
            if recorded is None:
                raise DeploymentError(f"cannot roll back to release {previous}: {STATE_FILE} has no record of it")
            self._ensure_router(state)
            image, model = ImageRef(**recorded["image"]), ModelRef(**recorded["model"])
            entry = self._server_for(state, "production", previous, image, model)
            self._switch(entry)
            production.update(current=previous, previous=None)
            failed = state["servers"].pop(f"production-{release_id}", None)
            if failed:
                self._stop(failed)
        logger.warning("production rolled back from release %s to %s", release_id, previous)
        return self._production_endpoint(previous)

    def ensure_router(self) -> str:
        """Start the production router if it is not running; return the production scoring URL."""
        with self._locked_state() as state:
            self._ensure_router(state)
        return f"{self.production_url}/score"

    def status(self) -> dict[str, Any]:
        """Every recorded process with whether it is running (pid alive and health check passing)."""
        # The state file is replaced atomically, so reading it needs no lock.
        state = read_json(self.home / STATE_FILE, default=None) or _empty_state()
        router = state["router"]
        return {
            "production_url": f"{self.production_url}/score",
            "production": dict(state["production"]),
            "router": {**router, "running": self._router_running(router)} if router else None,
            "servers": [{**entry, "running": self._running(entry)} for entry in state["servers"].values()],
        }

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

    def _server_for(
        self, state: dict[str, Any], role: str, release_id: str, image: ImageRef, model: ModelRef
    ) -> dict[str, Any]:
        """The release's running server for this image, or a new one (replacing a dead or outdated one)."""
        name = f"{role}-{release_id}"
        entry = state["servers"].get(name)
        if entry and entry["image"]["digest"] == image.digest and self._running(entry):
            return dict(entry)
        if entry:
            self._stop(entry)
            del state["servers"][name]
        entry = self._start_server(role, release_id, image, model)
        state["servers"][name] = entry
        return entry

    def _start_server(self, role: str, release_id: str, image: ImageRef, model: ModelRef) -> dict[str, Any]:
        context = Path(image.location)
        if not (context / "score.py").is_file() or not (context / "model").is_dir():
            raise DeploymentError(
                f"image {image.reference} has no build context at {context!s} (score.py and model/ expected)"
            )
        port = free_port()
        log = self.logs / f"{role}-{_file_name_part(release_id)}-{port}.log"
        server = InferenceServer(context / "score.py", context / "model", log, port=port)
        try:
            server.start(self.startup_timeout_s)
        except InferenceServerError as exc:
            raise DeploymentError(f"{role} server for release {release_id} did not start: {exc}") from None
        assert server.process is not None  # start() returned, so it is running
        self._children[server.process.pid] = server.process
        logger.info("%s server for release %s on %s (pid %d)", role, release_id, server.url, server.process.pid)
        return {
            "role": role,
            "release_id": release_id,
            "port": port,
            "pid": server.process.pid,
            "url": server.url,
            "log": str(log),
            "started_at": utc_now(),
            "image": {
                "repository": image.repository,
                "tag": image.tag,
                "digest": image.digest,
                "location": str(context),
            },
            "model": {"name": model.name, "version": model.version, "location": model.location},
        }

    def _running(self, entry: dict[str, Any]) -> bool:
        child = self._children.get(entry["pid"])
        alive = child.poll() is None if child is not None else pid_alive(entry["pid"])
        return alive and http_ok(f"http://127.0.0.1:{entry['port']}/")

    def _stop(self, entry: dict[str, Any]) -> bool:
        return stop_process_group(entry["pid"], self._children.pop(entry["pid"], None))

    def _switch(self, entry: dict[str, Any]) -> None:
        """Point the router at ``entry`` and wait until it routes there."""
        target = {"release_id": entry["release_id"], "port": entry["port"]}
        path = self.home / PRODUCTION_FILE
        before = read_json(path)
        write_json_atomic(path, {**target, "url": entry["url"], "switched_at": utc_now()})
        deadline = time.monotonic() + SWITCH_TIMEOUT_S
        while time.monotonic() < deadline:
            info = self._router_info()
            if info and info.get("target") == target:
                return
            time.sleep(0.05)
        # Put the old target back so production.json keeps agreeing with deployments.json.
        if before is None:
            path.unlink(missing_ok=True)
        else:
            write_json_atomic(path, before)
        raise DeploymentError(
            f"the production router on port {self.production_port} did not switch to release "
            f"{entry['release_id']} within {SWITCH_TIMEOUT_S:.0f} s; see {self.logs / 'router.log'}"
        )

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

    def _start_router(self) -> dict[str, Any]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / "router.log"
        command = [sys.executable, str(ROUTER_SCRIPT), "--home", str(self.home), "--port", str(self.production_port)]
        with open(log, "ab") as handle:
            process = subprocess.Popen(
                command,
                cwd=self.home,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the caller's terminal session, like the servers
            )
        self._children[process.pid] = process
        entry = {"role": "router", "pid": process.pid, "port": self.production_port, "log": str(log)}
        deadline = time.monotonic() + ROUTER_STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._children.pop(process.pid, None)
                raise DeploymentError(
                    f"the production router exited with code {process.returncode} on start-up:\n{log_tail(log)}"
                )
            if self._router_running(entry):
                logger.info("production router on %s (pid %d)", self.production_url, process.pid)
                return {**entry, "started_at": utc_now()}
            time.sleep(0.05)
        self._stop(entry)
        raise DeploymentError(
            f"the production router did not answer on {self.production_url} within "
            f"{ROUTER_STARTUP_TIMEOUT_S:.0f} s:\n{log_tail(log)}"
        )

    def _production_endpoint(self, release_id: str) -> Endpoint:
        return Endpoint("production", f"{self.production_url}/score", release_id)


def _file_name_part(text: str) -> str:
    """``text`` for a log file name: letters, digits, '_', '.' and '-' kept, at most 60 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:60] or "release"
