"""Scoring overhead: scoring/score.py against the least work any scorer must do, in-process and over HTTP.

    python -m benchmarks.scoring [--seconds 2] [--http-seconds 3] [--http-rounds 4] [--threads 2]
                                 [--client http.client|requests] [--kinds regressor,classifier] [--skip-http]

For each estimator kind (a regressor: Ridge on the diabetes data, trained by ml_pipeline.train; a
classifier: LogisticRegression on the breast-cancer data), after checking that both answer exactly
the same: in-process, ``score.run(body)`` versus json.loads + np.asarray(float64) + model.predict +
{"result": tolist()} for 1, 100 and 10,000 rows, median per call; over HTTP, azmlinfsrv serving
score.py versus the minimal path as an entry script (the target) and a no-op entry script (the
server's own cost), same client load, alternated. Prints figures and PASS/MISS; always exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import requests
from rich.table import Table

from benchmarks.common import load_average, machine_summary, verdict, wide_console
from ml_pipeline.dataset import BUILTIN_DIABETES, DEFAULT_TARGET, feature_columns, load_dataset
from ml_pipeline.train import train
from platforms.local.inference_server import InferenceServer

REPO = Path(__file__).resolve().parents[1]
SCORE_SCRIPT = REPO / "scoring" / "score.py"
BATCH_SIZES = (1, 100, 10_000)
# Max ratio score.run / minimal path, per batch size (no target at 100 rows).
IN_PROCESS_TARGETS = {1: 1.5, 10_000: 1.1}
HTTP_THROUGHPUT_TARGET = 0.95  # min requests/s of score.py relative to the minimal predict-only script
KINDS = ("regressor", "classifier")
CHUNK_SECONDS = 0.02  # time one chunk of calls, not one call: perf_counter resolution and overhead
MAX_ROUNDS = 500
HTTP_MAX_REQUESTS = 50_000  # per load run, in case the server is far faster than expected
HTTP_WARMUP_REQUESTS = 50
SEED = 20261126

# Same signature as score.run so azmlinfsrv takes the same path (JSON string input, headers passed in).
NOOP_SCRIPT = '''"""No-op entry script: the server's own cost per request, for comparison."""


def init():
    pass


def run(raw_data, request_headers=None):
    return {"result": [0.0]}
'''

# The target's baseline: the in-process "minimal path" as an entry script (predict only, no checks, no log).
MINIMAL_SCRIPT = '''"""Minimal entry script: parse, convert, predict, respond; no validation, no logging."""

import json
import os

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))


def run(raw_data, request_headers=None):
    rows = np.asarray(json.loads(raw_data)["data"], dtype=np.float64)
    return {"result": model.predict(rows).tolist()}
'''

console = wide_console()


# ---------------------------------------------------------------- set-up


def train_model(directory: Path, kind: str) -> tuple[Path, np.ndarray]:
    """A model directory of the given kind and the feature rows requests are drawn from."""
    model_dir = directory / kind
    if kind == "regressor":
        train(BUILTIN_DIABETES, model_dir)
        frame = load_dataset(BUILTIN_DIABETES)
        return model_dir, frame[feature_columns(frame, DEFAULT_TARGET)].to_numpy(dtype=np.float64)
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    features, labels = load_breast_cancer(return_X_y=True)
    model_dir.mkdir(parents=True)
    joblib.dump(LogisticRegression(max_iter=10_000).fit(features, labels), model_dir / "model.joblib")
    return model_dir, features


def request_body(features: np.ndarray, rows: int, rng: np.random.Generator) -> str:
    """Rows drawn with replacement from the real features, JSON-encoded as a client would send them."""
    picked = features[rng.integers(0, len(features), size=rows)]
    return json.dumps({"data": picked.tolist()})


@contextlib.contextmanager
def loaded_score_module(model_dir: Path) -> Iterator[ModuleType]:
    """score.py imported from its file (as azmlinfsrv does) with init() run against ``model_dir``.

    Its "scoring" handler is kept, so every request line is still formatted and written, but it
    writes to os.devnull rather than flooding stdout; it points back at stdout on exit.
    """
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    spec = importlib.util.spec_from_file_location("benchmarked_score", SCORE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with open(os.devnull, "w") as devnull:
        scoring_logger = logging.getLogger("scoring")
        for handler in scoring_logger.handlers:  # a handler an earlier import left (another kind)
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(devnull)
        with contextlib.redirect_stdout(devnull):
            module.init()  # a handler it adds binds sys.stdout now: devnull, like its init line
        handlers = [h for h in scoring_logger.handlers if isinstance(h, logging.StreamHandler)]
        try:
            yield module
        finally:
            for handler in handlers:
                handler.setStream(sys.stdout)


def minimal_scorer(model: Any) -> Callable[[str], dict[str, list[float]]]:
    """The least any JSON scorer must do: parse, convert, predict, build the response."""

    def score(raw_data: str) -> dict[str, list[float]]:
        rows = np.asarray(json.loads(raw_data)["data"], dtype=np.float64)
        return {"result": model.predict(rows).tolist()}

    return score


# ---------------------------------------------------------------- in-process timing


def calls_per_chunk(fn: Callable[[str], Any], body: str) -> int:
    fn(body)  # warm-up: first-call caches, lazy imports
    started = time.perf_counter()
    fn(body)
    one = time.perf_counter() - started
    return max(1, round(CHUNK_SECONDS / max(one, 1e-9)))


def seconds_per_call(fn: Callable[[str], Any], body: str, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn(body)
    return (time.perf_counter() - started) / calls


def compare_in_process(
    candidate: Callable[[str], Any], baseline: Callable[[str], Any], body: str, budget_s: float
) -> tuple[float, float, int]:
    """Median seconds per call of each, alternating chunks (ABBA) so drift and noise hit both alike."""
    calls = min(calls_per_chunk(candidate, body), calls_per_chunk(baseline, body))
    a_times: list[float] = []
    b_times: list[float] = []
    deadline = time.perf_counter() + 2 * budget_s  # budget_s per measurement, two measurements
    while len(a_times) < MAX_ROUNDS and (len(a_times) < 5 or time.perf_counter() < deadline):
        if len(a_times) % 2:
            b_times.append(seconds_per_call(baseline, body, calls))
            a_times.append(seconds_per_call(candidate, body, calls))
        else:
            a_times.append(seconds_per_call(candidate, body, calls))
            b_times.append(seconds_per_call(baseline, body, calls))
    return float(np.median(a_times)), float(np.median(b_times)), len(a_times) * calls


def check_same_result(score: ModuleType, baseline: Callable[[str], Any], body: str) -> None:
    """A benchmark of a scorer that answers differently would be meaningless: equal, value for value."""
    ours, theirs = score.run(body), baseline(body)
    if not isinstance(ours, dict) or ours["result"] != theirs["result"]:
        raise SystemExit(f"score.run and the minimal path disagree on {body[:80]}...")


# ---------------------------------------------------------------- HTTP load


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    server_cpu_s: float | None = 0.0  # None when /proc is unavailable
    client_cpu_s: float = 0.0
    round_rps: list[float] = field(default_factory=list)

    def add(self, other: LoadResult) -> None:
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.errors += other.errors
        self.client_cpu_s += other.client_cpu_s
        unknown = None in (self.server_cpu_s, other.server_cpu_s)
        self.server_cpu_s = None if unknown else (self.server_cpu_s or 0.0) + (other.server_cpu_s or 0.0)
        self.round_rps.append(other.rps)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def client_cpu_per_request(self) -> float:
        return self.client_cpu_s / len(self.latencies) if self.latencies else 0.0

    @property
    def server_cpu_per_request(self) -> float | None:
        """Server CPU seconds per request: its cost, whoever (client or server) limits the throughput."""
        if self.server_cpu_s is None or not self.latencies:
            return None
        return self.server_cpu_s / len(self.latencies)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


Sender = Callable[[], int]  # sends one request, returns the HTTP status


def http_client_sender(host: str, port: int, body: str) -> Sender:
    """Stdlib http.client, a connection per request: ~3x less client CPU per request than requests here.

    The server must be the bottleneck for the throughput ratio to mean anything; with requests the client
    needs about as much CPU per request as the server, and the 2 cores are shared.
    """
    payload = body.encode()
    headers = {"Content-Type": "application/json"}

    def send() -> int:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            connection.request("POST", "/score", body=payload, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()  # gunicorn's sync worker closes after every response anyway

    return send


def requests_sender(url: str, body: str) -> tuple[Sender, Callable[[], None]]:
    session = requests.Session()
    headers = {"Content-Type": "application/json"}
    return (lambda: session.post(url, data=body, headers=headers, timeout=30).status_code), session.close


def drive(
    server: InferenceServer,
    body: str,
    seconds: float,
    threads: int,
    client: str = "http.client",
    max_requests: int = HTTP_MAX_REQUESTS,
) -> LoadResult:
    """``threads`` clients sending ``body`` back to back; only 200s count, anything else is an error."""
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    per_thread = max(1, max_requests // threads)

    def run_client() -> None:
        if client == "requests":
            send, close = requests_sender(server.score_url, body)
        else:
            send, close = http_client_sender("127.0.0.1", server.port, body), (lambda: None)
        latencies: list[float] = []
        errors = 0
        try:
            while time.perf_counter() < deadline and len(latencies) + errors < per_thread:
                started = time.perf_counter()
                try:
                    ok = send() == 200
                except (OSError, http.client.HTTPException, requests.RequestException):
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
        finally:
            close()
        with lock:
            result.latencies += latencies
            result.errors += errors

    workers = [threading.Thread(target=run_client) for _ in range(threads)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result.seconds = time.perf_counter() - started
    result.client_cpu_s = time.process_time() - cpu_started  # only the client threads run meanwhile
    return result


def warm_up(url: str, body: str) -> None:
    with requests.Session() as session:
        for _ in range(HTTP_WARMUP_REQUESTS):
            response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
            response.raise_for_status()


def process_tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of ``pid`` and its direct children, from Linux /proc.

    The launcher runs gunicorn in-process, so that is the master and its sync workers.
    """
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                # Fields after the ")" that closes the command name: state, ppid, ..., utime (12th), stime (13th).
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended while we looked
            if int(entry.name) == pid or int(fields[1]) == pid:
                total += int(fields[11]) + int(fields[12])
        return total / ticks
    except (OSError, ValueError, IndexError):
        return None


def drive_measured(server: InferenceServer, body: str, seconds: float, threads: int, client: str) -> LoadResult:
    pid = server.process.pid if server.process else None
    before = process_tree_cpu_seconds(pid) if pid else None
    result = drive(server, body, seconds, threads, client)
    after = process_tree_cpu_seconds(pid) if pid else None
    result.server_cpu_s = after - before if before is not None and after is not None else None
    return result


def write_script(workdir: Path, name: str, text: str) -> Path:
    """Each entry script in its own directory: azmlinfsrv runs with the script's directory as cwd."""
    script = workdir / name / f"{name}_score.py"
    script.parent.mkdir()
    script.write_text(text)
    return script


def compare_over_http(
    workdir: Path, model_dir: Path, body: str, seconds: float, rounds: int, threads: int, client: str
) -> dict[str, LoadResult]:
    """All servers up at once; the load order reverses every round so none always runs first."""
    servers = {
        "score.py": InferenceServer(SCORE_SCRIPT, model_dir, workdir / "score_server.log"),
        "minimal": InferenceServer(write_script(workdir, "minimal", MINIMAL_SCRIPT), model_dir, workdir / "min.log"),
        "no-op": InferenceServer(write_script(workdir, "noop", NOOP_SCRIPT), model_dir, workdir / "noop.log"),
    }
    results = {name: LoadResult() for name in servers}
    try:
        for server in servers.values():
            server.start()
            warm_up(server.score_url, body)
        order = list(servers)
        for round_number in range(rounds):
            for name in order if round_number % 2 == 0 else order[::-1]:
                results[name].add(drive_measured(servers[name], body, seconds, threads, client))
    finally:
        for server in servers.values():
            server.stop()
    return results


# ---------------------------------------------------------------- report


def format_seconds(value: float) -> str:
    return f"{value * 1e6:,.1f} µs" if value < 1e-3 else f"{value * 1e3:,.2f} ms"


def run_in_process(kind: str, model_dir: Path, features: np.ndarray, budget_s: float) -> None:
    rng = np.random.default_rng(SEED)
    table = Table(title=f"{kind}, in-process: score.run(body) vs minimal path (median per call)")
    for column in ("rows", "score.run", "minimal", "ratio", "target", "", "calls each"):
        table.add_column(column, justify="right")
    with loaded_score_module(model_dir) as score:
        baseline = minimal_scorer(score.model)
        for rows in BATCH_SIZES:
            body = request_body(features, rows, rng)
            check_same_result(score, baseline, body)
            ours, theirs, calls = compare_in_process(score.run, baseline, body, budget_s)
            ratio = ours / theirs
            target = IN_PROCESS_TARGETS.get(rows)
            table.add_row(
                f"{rows:,}",
                format_seconds(ours),
                format_seconds(theirs),
                f"{ratio:.2f}",
                f"≤ {target}" if target else "—",
                verdict(ratio <= target) if target else "",
                f"{calls:,}",
            )
    console.print(table)


def run_over_http(kind: str, model_dir: Path, features: np.ndarray, workdir: Path, args: argparse.Namespace) -> None:
    body = request_body(features, 1, np.random.default_rng(SEED + 1))
    console.print(
        f"{kind}, HTTP: {args.threads} {args.client} client threads, 1-row requests, {args.http_rounds} × "
        f"{args.http_seconds:g} s per server, alternated; azmlinfsrv with its default worker count"
    )
    servers_dir = workdir / f"{kind}-servers"
    servers_dir.mkdir()
    results = compare_over_http(
        servers_dir, model_dir, body, args.http_seconds, args.http_rounds, args.threads, args.client
    )
    console.print(http_table(kind, results))
    minimal = results["minimal"]
    ratio = results["score.py"].rps / minimal.rps if minimal.rps else float("nan")
    per_round = [a / b for a, b in zip(results["score.py"].round_rps, minimal.round_rps, strict=True) if b]
    console.print(
        f"{kind}: throughput ratio score.py / minimal: {ratio:.3f} (target ≥ {HTTP_THROUGHPUT_TARGET}) "
        f"{verdict(ratio >= HTTP_THROUGHPUT_TARGET)}; per round {', '.join(f'{r:.2f}' for r in per_round)}"
    )


def http_table(kind: str, results: dict[str, LoadResult]) -> Table:
    table = Table(title=f"{kind}, over HTTP: azmlinfsrv + entry script, 1-row requests")
    columns = ("entry script", "requests", "errors", "req/s", "vs no-op", "p50", "p99")
    for column in (*columns, "server CPU/req", "CPU vs no-op", "client CPU/req"):
        table.add_column(column, justify="right")
    noop = results["no-op"]
    for name, result in results.items():
        cpu, noop_cpu = result.server_cpu_per_request, noop.server_cpu_per_request
        table.add_row(
            name,
            f"{len(result.latencies):,}",
            str(result.errors),
            f"{result.rps:,.0f}",
            f"{result.rps / noop.rps:.3f}" if noop.rps else "—",
            f"{result.percentile_ms(50):.2f} ms",
            f"{result.percentile_ms(99):.2f} ms",
            format_seconds(cpu) if cpu is not None else "—",
            f"{noop_cpu / cpu:.3f}" if cpu and noop_cpu is not None else "—",
            format_seconds(result.client_cpu_per_request),
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scoring", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="in-process budget per measurement")
    parser.add_argument("--http-seconds", type=float, default=3.0, help="length of one load run")
    parser.add_argument("--http-rounds", type=int, default=4, help="load runs per server")
    parser.add_argument("--threads", type=int, default=2, help="concurrent HTTP clients")
    parser.add_argument("--client", choices=("http.client", "requests"), default="http.client")
    parser.add_argument("--kinds", default=",".join(KINDS), help="estimator kinds, comma-separated")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args(argv)
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")

    console.print(machine_summary())
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        workdir = Path(tmp)
        for kind in kinds:
            with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
                model_dir, features = train_model(workdir, kind)
            run_in_process(kind, model_dir, features, args.seconds)
            if not args.skip_http:
                run_over_http(kind, model_dir, features, workdir, args)
    console.print(
        "'minimal' is json + numpy + predict only (the target's baseline); 'no-op' is the server's own cost. "
        "'server CPU' is the gunicorn processes' CPU per request; 'CPU vs no-op' = no-op's / this one's."
    )
    console.print(f"load average at the end: {load_average()}")
    return 0  # figures, not a test: a MISS is reported, never an exit status


if __name__ == "__main__":
    sys.exit(main())
