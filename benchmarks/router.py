"""Router overhead: POST /score through the local production router against calling azmlinfsrv directly.

    python -m benchmarks.router [--requests 2000] [--rows 3] [--time-limit 300] [--only stdlib,...]

Starts two azmlinfsrv servers serving scoring/score.py (a Ridge model trained on the diabetes data):
A, the production deployment, and B, a shadow. In front of A, each in its own process on 127.0.0.1:

- ``stdlib``: platforms/local/production_router.py as the deployer starts it (HTTP/1.1 kept alive to the
  client; upstream, a new connection per request, azmlinfsrv's gunicorn closes every one, written and
  read by the router itself);
- ``stdlib+mirror``: the same with ``"mirror": B, share 100``: every request also copied to B;
- ``stdlib+mirror-stub``: copied instead to a trivial stdlib server (its own process): the router's own
  cost of mirroring, without B's scoring competing for the cores;
- ``stdlib http.client``: the shipped router with http.client for the upstream call (as before);
- ``stdlib before``: the router as it was: HTTP/1.0 (a connection and a thread per request), http.client
  upstream, a log line per request;
- ``aiohttp`` (if importable; not a dependency: ``pip install --target DIR aiohttp==3.14.5`` and put DIR on
  PYTHONPATH) and ``uvicorn-httpx`` (both pinned already): the least forwarder each stack needs (read
  production.json once, forward to its target, answer), no evidence, no mirror: a lower bound for it.

One client (a requests.Session per endpoint, kept alive where the server allows) sends the same few-row
body back to back; the endpoints take turns in rounds of 20, order reversed every round, after a warm-up.
Baseline, measured in the same run: A called directly. Prints p50/p99 per endpoint, the ratio to direct,
router CPU per request (/proc), and checks the mirroring router's evidence. Targets: router p50 <= 1.2x
direct, and mirroring's cost on the primary path (p50 with / without mirror) <= 1.05x. Figures, not a
test: always exits 0. Bounded: --requests per endpoint and --time-limit for the whole measuring.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import requests
from rich.table import Table

from benchmarks.common import git_revision, load_average, machine_summary, verdict, wide_console
from benchmarks.scoring import SCORE_SCRIPT, process_tree_cpu_seconds, request_body, train_model
from platforms.local import production_router
from platforms.local.inference_server import InferenceServer, free_port

REPO = Path(__file__).resolve().parents[1]
ROUTER_SCRIPT = Path(production_router.__file__).resolve()
ROUND = 20  # requests per endpoint per turn: short, so load from elsewhere hits all alike
WARMUP = 50
ROUTER_STARTUP_S = 30.0
TARGET_ROUTER_RATIO = 1.2
TARGET_MIRROR_RATIO = 1.05
SHADOW_NICENESS = 10
SEED = 20261202

console = wide_console(150)


# ---------------------------------------------------------------- the alternatives (run as --serve NAME)


def call_upstream_http_client(
    port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> production_router.Upstream:
    """The upstream call through http.client, as the router made it before (the alternative measured)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=production_router.UPSTREAM_TIMEOUT_S)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return production_router.Upstream(502, {}, b"", (time.perf_counter() - started) * 1000, str(exc))
    finally:
        connection.close()
    kept = {name: value for name in production_router.FORWARDED_RESPONSE_HEADERS if (value := response.getheader(name))}
    return production_router.Upstream(response.status, kept, payload, (time.perf_counter() - started) * 1000)


def serve_stdlib_http_client(home: Path, port: int) -> None:
    production_router.call_upstream = call_upstream_http_client
    production_router.RouterServer(port, home).serve_forever()


def serve_stdlib_before(home: Path, port: int) -> None:
    """The router as it was before it kept client connections alive: HTTP/1.0, unbuffered, every request logged."""

    class Before(production_router.RouterHandler):
        protocol_version = "HTTP/1.0"
        disable_nagle_algorithm = False
        wbufsize = 0

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            BaseHTTPRequestHandler.log_request(self, code, size)

    production_router.call_upstream = call_upstream_http_client
    server = production_router.RouterServer(port, home)
    server.RequestHandlerClass = Before
    server.serve_forever()


class _Stub(BaseHTTPRequestHandler):
    """A mirror target that costs next to nothing: {"result": [0.0, ...]}, one value per row sent."""

    def do_GET(self) -> None:
        self._answer(b"{}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(json.dumps({"result": [0.0] * max(body.count(b"[") - 1, 0)}).encode())

    def _answer(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_stub(home: Path, port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Stub)
    server.daemon_threads = True
    server.serve_forever()


def first_target(home: Path) -> tuple[str, int]:
    document = json.loads((home / production_router.PRODUCTION_FILE).read_text())
    target = production_router.targets_of(document)[0]
    return str(target["release_id"]), int(target["port"])


def serve_aiohttp(home: Path, port: int) -> None:
    """aiohttp's server and client (pooled: a connection is reused whenever the upstream keeps it)."""
    aiohttp: Any = importlib.import_module("aiohttp")
    web: Any = importlib.import_module("aiohttp.web")
    release_id, upstream_port = first_target(home)
    base = f"http://127.0.0.1:{upstream_port}"

    async def session_context(app: Any) -> Any:
        app["session"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        yield
        await app["session"].close()

    async def forward(request: Any) -> Any:
        body = await request.read()
        headers = {name: value for name in ("Content-Type", "x-request-id") if (value := request.headers.get(name))}
        async with request.app["session"].request(request.method, base + request.path_qs, data=body or None,
                                                  headers=headers) as answer:  # fmt: skip
            payload = await answer.read()
            kept = {name: value for name in ("Content-Type", "x-request-id") if (value := answer.headers.get(name))}
            return web.Response(body=payload, status=answer.status, headers={**kept, "x-mlops-release": release_id})

    app = web.Application()
    app.cleanup_ctx.append(session_context)
    app.router.add_post("/score", forward)
    app.router.add_get("/", forward)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_uvicorn_httpx(home: Path, port: int) -> None:
    """uvicorn (h11, asyncio) with a bare ASGI app and httpx.AsyncClient (pooled)."""
    import httpx
    import uvicorn

    release_id, upstream_port = first_target(home)
    client: httpx.AsyncClient | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal client
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{upstream_port}", timeout=60)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if client is not None:
                        await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        wanted = {b"content-type": "Content-Type", b"x-request-id": "x-request-id"}
        headers = {wanted[name]: value.decode() for name, value in scope["headers"] if name in wanted}
        assert client is not None
        answer = await client.request(scope["method"], scope["path"], content=body or None, headers=headers)
        kept = [(name.encode(), value.encode()) for name in ("content-type", "x-request-id")
                if (value := answer.headers.get(name))]  # fmt: skip
        await send({"type": "http.response.start", "status": answer.status_code,
                    "headers": [*kept, (b"x-mlops-release", release_id.encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer.content})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")


SERVERS = {
    "stdlib-http.client": serve_stdlib_http_client,
    "stdlib-before": serve_stdlib_before,
    "aiohttp": serve_aiohttp,
    "uvicorn-httpx": serve_uvicorn_httpx,
    "stub": serve_stub,
}
SHIPPED = ("stdlib", "stdlib+mirror", "stdlib+mirror-stub", "stdlib+mirror-nice")  # the router script itself


# ---------------------------------------------------------------- set-up


@dataclass
class Endpoint:
    name: str
    url: str
    pid: int | None = None  # the router process, for its CPU
    latencies: list[float] = field(default_factory=list)
    cpu_s: float | None = 0.0
    note: str = ""

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")

    @property
    def cpu_per_request_ms(self) -> float | None:
        if self.cpu_s is None or not self.latencies:
            return None
        return self.cpu_s / len(self.latencies) * 1000


def write_production(home: Path, primary: InferenceServer, mirror: int | None) -> None:
    home.mkdir(parents=True, exist_ok=True)
    document = {
        "targets": [{"release_id": "rel-A", "port": primary.port, "weight": 100}],
        "mirror": {"release_id": "rel-B", "port": mirror, "share": 100} if mirror else None,
        "switched_at": "benchmark",
    }
    (home / production_router.PRODUCTION_FILE).write_text(json.dumps(document))


@contextlib.contextmanager
def router_process(name: str, home: Path, log: Path) -> Iterator[tuple[str, int]]:
    """A router variant in its own process on a free port; yields (URL, pid) once it answers GET /."""
    port = free_port()
    if name in SHIPPED:
        command = [sys.executable, str(ROUTER_SCRIPT), "--home", str(home), "--port", str(port)]
    else:
        command = [sys.executable, "-m", "benchmarks.router", "--serve", name, "--home", str(home), "--port", str(port)]
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ROUTER_STARTUP_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"router {name} exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if requests.get(url + "/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"router {name} did not answer within {ROUTER_STARTUP_S:.0f} s")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def renice_tree(server: InferenceServer, niceness: int) -> None:
    """The server's process and its children (gunicorn's workers) at ``niceness``: a shadow started low."""
    pid = server.process.pid if server.process else None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            if int(entry.name) == pid or parent == pid:
                os.setpriority(os.PRIO_PROCESS, int(entry.name), niceness)
        except (OSError, ValueError, IndexError):
            continue


# ---------------------------------------------------------------- load


def send_round(session: requests.Session, endpoint: Endpoint, body: str, count: int) -> None:
    headers = {"Content-Type": "application/json"}
    before = process_tree_cpu_seconds(endpoint.pid) if endpoint.pid else None
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(endpoint.url + "/score", data=body, headers=headers, timeout=30)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{endpoint.name} answered {response.status_code}: {response.text[:200]}")
        endpoint.latencies.append(elapsed)
    if endpoint.pid:
        after = process_tree_cpu_seconds(endpoint.pid)
        if before is None or after is None or endpoint.cpu_s is None:
            endpoint.cpu_s = None
        else:
            endpoint.cpu_s += after - before


def measure(endpoints: list[Endpoint], body: str, requests_each: int, deadline: float) -> None:
    sessions = {endpoint.name: requests.Session() for endpoint in endpoints}
    try:
        for endpoint in endpoints:
            for _ in range(WARMUP):
                sessions[endpoint.name].post(endpoint.url + "/score", data=body, timeout=30).raise_for_status()
        turn = 0
        while min(len(e.latencies) for e in endpoints) < requests_each and time.monotonic() < deadline:
            for endpoint in endpoints if turn % 2 == 0 else endpoints[::-1]:
                count = min(ROUND, requests_each - len(endpoint.latencies))
                if count > 0:
                    send_round(sessions[endpoint.name], endpoint, body, count)
            turn += 1
    finally:
        for session in sessions.values():
            session.close()


# ---------------------------------------------------------------- report


def check_evidence(url: str, sent: int) -> str:
    """The mirroring router's evidence: every request served by A and copied to B, the pairs equal."""
    deadline = time.monotonic() + 10  # the last copies may still be in flight (at most 32)
    while True:
        evidence = requests.get(url + "/router/evidence", timeout=10).json()
        mirrored = evidence["mirrored"].get("rel-B", {})
        if mirrored.get("requests", 0) + evidence["mirror_dropped"] >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    served = evidence["served"].get("rel-A", {})
    pairs = evidence["pairs"].get("rel-B", [])
    same = all(abs(p - m) < 1e-9 for p, m in pairs)
    return (
        f"evidence of stdlib+mirror: seq {evidence['seq']} (sent {sent}), served by rel-A {served.get('requests')}"
        f" ({served.get('errors')} errors), mirrored to rel-B {mirrored.get('requests')} "
        f"({mirrored.get('errors')} errors), dropped {evidence['mirror_dropped']}; {len(pairs)} pairs kept "
        f"(newest 5,000), all equal (same model): {same}"
    )


def report(endpoints: list[Endpoint], rows: int, elapsed: float) -> None:
    direct = endpoints[0]
    table = Table(title=f"POST /score, {rows} rows, one kept-alive requests.Session client, {elapsed:.0f} s")
    for column in ("endpoint", "requests", "p50", "p99", "p50 / direct", "p99 / direct", "router CPU/req", "note"):
        table.add_column(column, justify="left" if column in ("endpoint", "note") else "right")
    for endpoint in endpoints:
        cpu = endpoint.cpu_per_request_ms
        table.add_row(
            endpoint.name,
            f"{len(endpoint.latencies):,}",
            f"{endpoint.percentile_ms(50):.2f} ms",
            f"{endpoint.percentile_ms(99):.2f} ms",
            f"{endpoint.percentile_ms(50) / direct.percentile_ms(50):.3f}",
            f"{endpoint.percentile_ms(99) / direct.percentile_ms(99):.3f}",
            f"{cpu:.3f} ms" if cpu is not None and endpoint is not direct else "—",
            endpoint.note,
        )
    console.print(table)
    by_name = {endpoint.name: endpoint for endpoint in endpoints}
    if "stdlib" in by_name:
        ratio = by_name["stdlib"].percentile_ms(50) / direct.percentile_ms(50)
        console.print(f"router p50 / direct p50: {ratio:.3f} (target ≤ {TARGET_ROUTER_RATIO}) "
                      f"{verdict(ratio <= TARGET_ROUTER_RATIO)}")  # fmt: skip
    for name in ("stdlib+mirror", "stdlib+mirror-stub", "stdlib+mirror-nice"):
        if "stdlib" in by_name and name in by_name:
            ratio = by_name[name].percentile_ms(50) / by_name["stdlib"].percentile_ms(50)
            p99 = by_name[name].percentile_ms(99) / by_name["stdlib"].percentile_ms(99)
            passed = verdict(ratio <= TARGET_MIRROR_RATIO)
            console.print(f"mirroring's cost on the primary path, p50 {name} / stdlib: {ratio:.3f} "
                          f"(target ≤ {TARGET_MIRROR_RATIO}) {passed}; p99 {p99:.3f}")  # fmt: skip


NOTES = {
    "stdlib": "shipped",
    "stdlib+mirror": "shipped; every request copied to B",
    "stdlib+mirror-stub": "shipped; every request copied to a stub",
    "stdlib+mirror-nice": "shipped; copied to B' at nice 10",
    "stdlib-http.client": "upstream via http.client",
    "stdlib-before": "as before this change",
    "aiohttp": "forward only",
    "uvicorn-httpx": "forward only",
}
VARIANTS = ("stdlib", "stdlib+mirror", "stdlib+mirror-stub", "stdlib+mirror-nice", "stdlib-http.client",
            "stdlib-before", "aiohttp", "uvicorn-httpx")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.router", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per endpoint")
    parser.add_argument("--rows", type=int, default=3, help="rows per scoring request")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds for the measuring (default 300)")
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)  # a variant's own process
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        SERVERS[args.serve](args.home, args.port)
        return 0

    wanted = [name for name in args.only.split(",") if name]
    unknown = set(wanted) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    if "aiohttp" in wanted and importlib.util.find_spec("aiohttp") is None:
        console.print("aiohttp is not importable: skipped (pip install --target DIR aiohttp==3.14.5; PYTHONPATH=DIR)")
        wanted.remove("aiohttp")
    console.print(f"[bold]router overhead[/] · {machine_summary()} · {git_revision()}")
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            model_dir, features = train_model(workdir, "regressor")
        body = request_body(features, args.rows, np.random.default_rng(SEED))
        primary = stack.enter_context(InferenceServer(SCORE_SCRIPT, model_dir, workdir / "a.log"))
        shadow = stack.enter_context(InferenceServer(SCORE_SCRIPT, model_dir, workdir / "b.log"))
        stub_port = None
        if "stdlib+mirror-stub" in wanted:
            stub_url, _ = stack.enter_context(router_process("stub", workdir, workdir / "stub.log"))
            stub_port = int(stub_url.rsplit(":", 1)[1])
        nice_port = None
        if "stdlib+mirror-nice" in wanted:
            niced = stack.enter_context(InferenceServer(SCORE_SCRIPT, model_dir, workdir / "b-nice.log"))
            renice_tree(niced, SHADOW_NICENESS)
            nice_port = niced.port
        mirrors = {"stdlib+mirror": shadow.port, "stdlib+mirror-stub": stub_port, "stdlib+mirror-nice": nice_port}
        endpoints = [Endpoint("direct (A)", primary.url)]
        for name in wanted:
            home = workdir / name
            write_production(home, primary, mirrors.get(name))
            url, pid = stack.enter_context(router_process(name, home, workdir / f"{name}.log"))
            endpoints.append(Endpoint(name, url, pid, note=NOTES.get(name, "")))
        started = time.monotonic()
        measure(endpoints, body, args.requests, started + args.time_limit)
        elapsed = time.monotonic() - started
        report(endpoints, args.rows, elapsed)
        for endpoint in endpoints:
            if endpoint.name == "stdlib+mirror":
                console.print(check_evidence(endpoint.url, WARMUP + len(endpoint.latencies)))
    console.print(f"load average at the end: {load_average()}")
    return 0  # figures, not a test: a MISS is reported, never an exit status


if __name__ == "__main__":
    sys.exit(main())
