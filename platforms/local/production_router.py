"""Production's stable local URL: a small reverse proxy in front of the current version.

    python platforms/local/production_router.py --home .mlops --port 5101

Forwards ``GET /`` (health) and ``POST /score`` to the inference servers named in
``<home>/production.json`` ({"targets": [{"release_id", "port", "weight"}, ...]}), each request to
one target picked by weight (percent), re-reading the file whenever it changes, so the deployer
moves traffic by replacing that file atomically. Without a target it answers 503
``{"error": "no production deployment"}``. ``GET /router`` describes the router itself (its home,
targets, and how many scoring requests it sent each one) for the deployer's follow and for tests
that prove a deployment never had live traffic. Standard library only, so it starts fast and needs
nothing from the project.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

PRODUCTION_FILE = "production.json"
ROUTER_PATH = "/router"
UPSTREAM_TIMEOUT_S = 60.0
FORWARDED_REQUEST_HEADERS = ("Content-Type", "x-request-id")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "x-request-id")


class Target(NamedTuple):
    release_id: str
    port: int
    weight: int = 100


def targets_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets a production.json names (an older one-target file counts as 100% to it)."""
    if isinstance(document.get("targets"), list):
        return [dict(t) for t in document["targets"] if isinstance(t, dict)]
    if document.get("port"):
        return [{"release_id": document.get("release_id"), "port": document["port"], "weight": 100}]
    return []


class TargetFile:
    """The current target, re-read only when production.json changes (os.replace gives it a new inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._targets: list[Target] = []

    def current(self) -> list[Target]:
        """The targets with some traffic (an empty list: no production deployment)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key != self._seen:
                self._targets = self._read()
                self._seen = key
            return list(self._targets)

    def pick(self) -> Target | None:
        """One target for a request, by weight."""
        targets = self.current()
        if not targets:
            return None
        return random.choices(targets, weights=[t.weight for t in targets])[0]

    def _read(self) -> list[Target]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            targets = [Target(str(t["release_id"]), int(t["port"]), int(t.get("weight", 100)))
                       for t in targets_of(document)]  # fmt: skip
            return [t for t in targets if t.weight > 0]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"router: ignoring unreadable {self.path}: {exc}", file=sys.stderr, flush=True)
            return []


class RouterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, home: Path) -> None:
        super().__init__(("127.0.0.1", port), RouterHandler)
        self.home = home
        self.targets = TargetFile(home / PRODUCTION_FILE)
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()

    def counted(self, release_id: str) -> None:
        with self._counts_lock:
            self._counts[release_id] = self._counts.get(release_id, 0) + 1

    def counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)


class RouterHandler(BaseHTTPRequestHandler):
    server: RouterServer

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == ROUTER_PATH:
            targets = self.server.targets.current()
            self._reply_json(
                200,
                {
                    "router": "mlops-local-production",
                    "home": str(self.server.home),
                    "pid": os.getpid(),
                    "targets": [target._asdict() for target in targets],
                    "counts": self.server.counts(),
                },
            )
        elif path == "/":
            self._forward(b"")
        else:
            self._reply_json(404, {"error": f"no route GET {path}; try GET / or POST /score"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path != "/score":
            self._reply_json(404, {"error": f"no route POST {path}; try POST /score"})
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._reply_json(411, {"error": "send the body with a Content-Length"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._reply_json(400, {"error": "Content-Length is not a number"})
            return
        self._forward(self.rfile.read(length))

    def _forward(self, body: bytes) -> None:
        target = self.server.targets.pick()
        if target is None:
            self._reply_json(503, {"error": "no production deployment"})
            return
        if self.command == "POST":
            self.server.counted(target.release_id)  # every scoring request routed there, answered or not
        headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := self.headers.get(name))}
        upstream = http.client.HTTPConnection("127.0.0.1", target.port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            upstream.request(self.command, self.path, body=body if self.command == "POST" else None, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._reply_json(
                502, {"error": f"production version {target.release_id} (port {target.port}) is unreachable: {exc}"}
            )
            return
        finally:
            upstream.close()
        self.send_response(response.status)
        for name in FORWARDED_RESPONSE_HEADERS:
            if value := response.getheader(name):
                self.send_header(name, value)
        self.send_header("x-mlops-release", target.release_id)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reply_json(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, type=Path, help="the $MLOPS_HOME holding production.json")
    parser.add_argument("--port", required=True, type=int, help="port on 127.0.0.1 for the production URL")
    args = parser.parse_args(argv)
    try:
        server = RouterServer(args.port, args.home.resolve())
    except OSError as exc:
        print(f"router: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr, flush=True)
        return 1

    def stop(signum: int, frame: object) -> None:
        # serve_forever() must be stopped from another thread than the one running it.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"router: production URL http://127.0.0.1:{args.port}/score, targets from {server.targets.path}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    print("router: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
