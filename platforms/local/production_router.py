"""Production's stable local URL: a small reverse proxy in front of the current version.

    python platforms/local/production_router.py --home .mlops --port 5101

Forwards ``GET /`` (health) and ``POST /score`` to the inference servers named in
``<home>/production.json``::

    {"targets": [{"release_id", "port", "weight"}, ...],
     "mirror": {"release_id", "port", "share"} | null,
     "switched_at": ...}

re-reading the file whenever it changes, so the deployer moves traffic by replacing it atomically.

- **Weights** (percent) are dealt by smooth weighted round-robin (nginx's), not at random: over the
  first n scoring requests after the weights change, a target of weight w gets at most
  ceil(w * n / 100) of them. ``GET /`` goes to the heaviest target and takes no turn.
- **Mirror** (shadow): ``share`` percent of the scoring requests (request k after the mirror changes
  is copied when floor(k * share / 100) > floor((k - 1) * share / 100)) are also sent to the mirror
  target once the primary answer has been written; the mirror's answer is kept as evidence, never
  returned. At most ``mirror_limit`` copies are in flight: beyond that a copy is dropped and counted.
- **Evidence**: every routed ``POST /score`` leaves a record (sequence number, release, status, upstream
  latency, the first 50 predictions of its ``result``), mirror answers too (under the primary's sequence
  number, paired row by row with the primary's predictions), in bounded memory; ``GET /router/evidence
  ?after=SEQ`` sums the records after SEQ (see ``Evidence``).

Without a target it answers 503 ``{"error": "no production deployment"}``. ``GET /router`` describes
the router itself (its id, home, targets, mirror, and how many scoring requests it sent each target)
for the deployer's follow and for tests that prove a deployment never had live traffic.

Standard library only, so it starts fast and needs nothing from the project. benchmarks/router.py
(figures in docs/benchmarks.md) measured it against aiohttp and uvicorn + httpx forwarders, which were
slower while doing less. Client connections are kept alive (HTTP/1.1); azmlinfsrv's gunicorn closes every
connection, so each upstream call opens a new one, written and read here (``call_upstream``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

PRODUCTION_FILE = "production.json"
ROUTER_PATH = "/router"
EVIDENCE_PATH = "/router/evidence"
UPSTREAM_TIMEOUT_S = 60.0
CLIENT_IDLE_TIMEOUT_S = 120.0  # a kept-alive client connection (and its thread) idle this long is closed
FORWARDED_REQUEST_HEADERS = ("Content-Type", "x-request-id")
FORWARDED_RESPONSE_HEADERS = ("Content-Type", "x-request-id")

# Memory bounds. A record is a 4-tuple (seq, release id, kind, status), about 100 bytes with its seq int:
# the ring of RING_RECORDS is about 10 MB when full. Latencies, predictions and pairs are kept per (kind,
# release) window of the newest WINDOW_VALUES values each ((seq, value) tuples), for at most MAX_WINDOWS
# windows (the least recently written goes first; a rollout writes two or three). Measured with
# tracemalloc: a full ring and three full windows hold 13 MB, so the worst case (32 full windows) is about
# 45 MB. An evidence answer holds at most WINDOW_VALUES values per list (about 400 kB of JSON for three),
# and summing a full ring takes about 0.1 s of CPU, outside the routing lock.
RING_RECORDS = 100_000
WINDOW_VALUES = 5_000
MAX_WINDOWS = 32
MAX_ROWS = 50  # predictions kept per request (the first rows of its result)
MAX_TEXT = 200  # characters kept of a string prediction (a class label)
# Mirroring: copies in flight (queued or being sent) at most MIRROR_LIMIT, each holding its request body
# (at most MIRROR_MAX_BODY_BYTES; a larger one is not copied but dropped), so at most 32 MiB; sent by
# MIRROR_WORKERS threads, started on the first copy.
MIRROR_LIMIT = 32
MIRROR_WORKERS = 4
MIRROR_MAX_BODY_BYTES = 1 << 20
# A scoring body larger than this is refused (413) before it is read: the router holds each body in
# memory. score.py's own limit (SCORING_MAX_ROWS, 10,000 rows) is about 2.5 MB of JSON for our models.
MAX_BODY_BYTES = 32 << 20

SERVED, MIRRORED, DROPPED = 0, 1, 2  # record kinds


class Target(NamedTuple):
    release_id: str
    port: int
    weight: int = 100


class Mirror(NamedTuple):
    release_id: str
    port: int
    share: int


def targets_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets a production.json names (an older one-target file counts as 100% to it)."""
    if isinstance(document.get("targets"), list):
        return [dict(t) for t in document["targets"] if isinstance(t, dict)]
    if document.get("port"):
        return [{"release_id": document.get("release_id"), "port": document["port"], "weight": 100}]
    return []


def mirror_of(document: dict[str, Any]) -> Mirror | None:
    """The mirror a production.json names; None when it names none or a share of 0."""
    entry = document.get("mirror")
    if not entry:
        return None
    share = int(entry.get("share", 100))
    if not 0 <= share <= 100:
        raise ValueError(f"mirror share must be 0..100, not {share}")
    return Mirror(str(entry["release_id"]), int(entry["port"]), share) if share else None


def is_mirrored(k: int, share: int) -> bool:
    """Whether the k-th request (from 1) is copied at ``share`` percent: exactly floor(n * share / 100) of n."""
    return k * share // 100 > (k - 1) * share // 100


class SmoothWeighted:
    """nginx's smooth weighted round-robin over fixed weights (not thread-safe: the caller locks).

    Each pick adds every weight to its target's current value, takes the largest (ties: the first listed)
    and takes the total off it. After n picks target i has had n * w_i / total of them, give or take less
    than one, spread evenly rather than in runs.
    """

    def __init__(self, weights: Sequence[int]) -> None:
        if not weights or any(w <= 0 for w in weights):
            raise ValueError(f"weights must be positive, not {list(weights)}")
        self.weights = tuple(weights)
        self._total = sum(self.weights)
        self._current = [0] * len(self.weights)

    def pick(self) -> int:
        best = 0
        for index, weight in enumerate(self.weights):
            self._current[index] += weight
            if self._current[index] > self._current[best]:
                best = index
        self._current[best] -= self._total
        return best


class Routing(NamedTuple):
    targets: tuple[Target, ...]
    mirror: Mirror | None


NO_ROUTING = Routing((), None)


class TargetFile:
    """The current routing, re-read only when production.json changes (os.replace gives it a new inode).

    Holds the turn-taking state too: the round-robin starts afresh when the targets or their weights
    change, the mirror's request count when the mirror changes (a rewrite with the same ones keeps both).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._routing = NO_ROUTING
        self._picker: SmoothWeighted | None = None
        self._mirror_count = 0

    def routing(self) -> Routing:
        key = self._key()
        with self._lock:
            self._refresh(key)
            return self._routing

    def current(self) -> list[Target]:
        """The targets with some traffic (an empty list: no production deployment)."""
        return list(self.routing().targets)

    def pick(self) -> tuple[Target, Mirror | None] | None:
        """The target for the next scoring request, and the mirror if it is to be copied; None: no target."""
        key = self._key()
        with self._lock:
            self._refresh(key)
            if self._picker is None:
                return None
            target = self._routing.targets[self._picker.pick()]
            mirror = self._routing.mirror
            if mirror is not None:
                self._mirror_count += 1
                if not is_mirrored(self._mirror_count, mirror.share):
                    mirror = None
            return target, mirror

    def heaviest(self) -> Target | None:
        """The target health checks go to: the largest weight, the first listed of equals; no turn taken."""
        targets = self.routing().targets
        return max(targets, key=lambda t: t.weight) if targets else None

    def _key(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _refresh(self, key: tuple[int, int, int] | None) -> None:
        if key == self._seen:
            return
        routing = self._read() if key else NO_ROUTING
        self._seen = key
        if routing.targets != self._routing.targets:
            self._picker = SmoothWeighted([t.weight for t in routing.targets]) if routing.targets else None
        if routing.mirror != self._routing.mirror:
            self._mirror_count = 0
        self._routing = routing

    def _read(self) -> Routing:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            targets = [Target(str(t["release_id"]), int(t["port"]), int(t.get("weight", 100)))
                       for t in targets_of(document)]  # fmt: skip
            targets = [t for t in targets if t.weight > 0]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"router: ignoring unreadable {self.path}: {exc}", file=sys.stderr, flush=True)
            return NO_ROUTING
        try:
            mirror = mirror_of(document)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"router: ignoring the mirror in {self.path}: {exc!r}", file=sys.stderr, flush=True)
            mirror = None
        return Routing(tuple(targets), mirror)


Prediction = float | int | str | None


def predictions_of(status: int, payload: bytes, rows: int = MAX_ROWS) -> list[Prediction]:
    """The first ``rows`` rows of a 2xx JSON answer's ``result``: numbers or strings, None for any other row."""
    if not 200 <= status < 300:
        return []
    try:
        result = json.loads(payload).get("result")
    except (ValueError, AttributeError):
        return []
    if not isinstance(result, list):
        return []
    return [_prediction(value) for value in result[:rows]]


def _prediction(value: object) -> Prediction:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None


class _Window:
    """The newest values of one release's served (or mirrored) answers, each with its sequence number."""

    def __init__(self, size: int) -> None:
        self.latencies: deque[tuple[int, float]] = deque(maxlen=size)
        self.predictions: deque[tuple[int, Prediction]] = deque(maxlen=size)
        self.pairs: deque[tuple[int, Prediction, Prediction]] = deque(maxlen=size)
        self.written = 0


class Evidence:
    """Bounded per-deployment evidence of the scoring requests (sizes: see RING_RECORDS and the others).

    Sequence numbers are given out from 1 per router process, one per routed scoring request. A mirror's
    answer is recorded under its primary's number when it comes in, possibly after later requests: a
    reader that wants every mirror answer of a stretch re-reads from the stretch's start mark (``after=``
    the ``seq`` it read then) rather than only from its previous read.
    """

    def __init__(
        self,
        records: int = RING_RECORDS,
        window: int = WINDOW_VALUES,
        max_windows: int = MAX_WINDOWS,
    ) -> None:
        self.router_id = str(uuid.uuid4())
        self._lock = threading.Lock()
        self._seq = 0
        self._records: deque[tuple[int, str, int, int]] = deque(maxlen=records)
        self._windows: dict[tuple[int, str], _Window] = {}
        self._window_size = window
        self._max_windows = max_windows
        self._writes = 0

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def served(self, seq: int, release_id: str, status: int, latency_ms: float, predictions: list[Prediction]) -> None:
        self._add(seq, release_id, SERVED, status, latency_ms, predictions, ())

    def mirrored(
        self,
        seq: int,
        release_id: str,
        status: int,
        latency_ms: float,
        predictions: list[Prediction],
        primary: list[Prediction],
    ) -> None:
        pairs = [(p, m) for p, m in zip(primary, predictions, strict=False) if p is not None and m is not None]
        self._add(seq, release_id, MIRRORED, status, latency_ms, predictions, pairs)

    def dropped(self, seq: int, release_id: str) -> None:
        with self._lock:
            self._records.append((seq, release_id, DROPPED, 0))

    def _add(
        self,
        seq: int,
        release_id: str,
        kind: int,
        status: int,
        latency_ms: float,
        predictions: list[Prediction],
        pairs: Sequence[tuple[Prediction, Prediction]],
    ) -> None:
        with self._lock:
            self._records.append((seq, release_id, kind, status))
            window = self._windows.get((kind, release_id))
            if window is None:
                if len(self._windows) >= self._max_windows:
                    del self._windows[min(self._windows, key=lambda k: self._windows[k].written)]
                window = self._windows[(kind, release_id)] = _Window(self._window_size)
            self._writes += 1
            window.written = self._writes
            window.latencies.append((seq, latency_ms))
            window.predictions.extend((seq, value) for value in predictions if value is not None)
            window.pairs.extend((seq, p, m) for p, m in pairs)

    def report(self, after: int = 0) -> dict[str, Any]:
        """The records after sequence number ``after``, summed per release (the GET /router/evidence answer)."""
        with self._lock:  # copy under the lock (fast), sum outside it
            seq = self._seq
            if after >= seq:  # only where it stands (a client taking a mark): nothing to copy or sum
                oldest = min((record[0] for record in self._records), default=0)
                records, windows = [], {}
            else:
                records = list(self._records)
                windows = {k: (list(w.latencies), list(w.predictions), list(w.pairs)) for k, w in self._windows.items()}
                oldest = min((record[0] for record in records), default=0)
        floor = max(after, oldest - 1)  # values whose record has left the ring are left out with it
        groups: dict[int, dict[str, dict[str, Any]]] = {SERVED: {}, MIRRORED: {}}
        dropped = 0
        for number, release_id, kind, status in records:
            if number <= after:
                continue
            if kind == DROPPED:
                dropped += 1
                continue
            group = groups[kind].get(release_id)
            if group is None:
                group = groups[kind][release_id] = {"requests": 0, "errors": 0, "latencies_ms": [], "predictions": []}
            group["requests"] += 1
            group["errors"] += status >= 500
        pairs: dict[str, list[list[Prediction]]] = {}
        for (kind, release_id), (latencies, predictions, paired) in windows.items():
            group = groups[kind].get(release_id)
            if group is None:
                continue
            group["latencies_ms"] = [round(ms, 3) for number, ms in latencies if number > floor]
            group["predictions"] = [value for number, value in predictions if number > floor]
            if kind == MIRRORED:
                pairs[release_id] = [[p, m] for number, p, m in paired if number > floor]
        return {
            "router_id": self.router_id,
            "seq": seq,
            "oldest_seq": oldest,
            "served": groups[SERVED],
            "mirrored": groups[MIRRORED],
            "pairs": pairs,
            "mirror_dropped": dropped,
        }


class Upstream(NamedTuple):
    status: int
    headers: dict[str, str]
    payload: bytes
    latency_ms: float
    error: str | None = None


class UpstreamError(Exception):
    """The upstream's answer is not HTTP/1.x as this client reads it."""


def call_upstream(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Upstream:
    """One request to an inference server on 127.0.0.1, on a new connection (gunicorn closes each anyway).

    HTTP/1.1 with ``Connection: close``, written and read here rather than through http.client, whose
    header parsing (the email package) was a quarter of the router's CPU per request (docs/benchmarks.md).
    Reads a body by Content-Length, chunked, or up to the close. An unreachable upstream (refused, reset,
    timed out, not HTTP) is status 502 with ``error`` saying why.
    """
    started = time.perf_counter()
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items() if "\r" not in value and "\n" not in value]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as connection:  # no name to resolve
            connection.settimeout(UPSTREAM_TIMEOUT_S)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.connect(("127.0.0.1", port))
            connection.sendall(request)
            status, received, payload = read_response(connection.recv, method == "HEAD")
    except (OSError, UpstreamError) as exc:
        return Upstream(502, {}, b"", (time.perf_counter() - started) * 1000, str(exc) or type(exc).__name__)
    kept = {name: received[name.lower()] for name in FORWARDED_RESPONSE_HEADERS if received.get(name.lower())}
    return Upstream(status, kept, payload, (time.perf_counter() - started) * 1000)


MAX_HEAD_BYTES = 64 * 1024


def read_response(recv: Callable[[int], bytes], head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    """(status, headers by lower-case name, body) of one HTTP/1.x answer on a connection that closes after it."""
    buffer = b""
    while True:  # skip interim 1xx answers
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise UpstreamError("the answer's headers are too long")
            chunk = recv(65536)
            if not chunk:
                raise UpstreamError("the connection closed before a whole answer" if buffer else "no answer")
            buffer += chunk
        status_line, *header_lines = buffer[:end].decode("latin-1").split("\r\n")
        buffer = buffer[end + 4 :]
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise UpstreamError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        status = int(code)
        if status >= 200:
            break
    received: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise UpstreamError(f"malformed header line {line[:80]!r}")
        received[name.strip().lower()] = value.strip()
    if head_only or status in (204, 304):
        return status, received, b""
    chunked = "chunked" in received.get("transfer-encoding", "").lower()
    length_text = received.get("content-length")
    if length_text is not None and not chunked:
        if not length_text.isdigit():
            raise UpstreamError(f"bad Content-Length {length_text[:40]!r}")
        length = int(length_text)
        parts, have = [buffer], len(buffer)
        while have < length:
            chunk = recv(min(65536 * 4, length - have))
            if not chunk:
                raise UpstreamError(f"the connection closed after {have} of {length} bytes")
            parts.append(chunk)
            have += len(chunk)
        return status, received, b"".join(parts)[:length]
    parts = [buffer]
    while chunk := recv(65536 * 4):
        parts.append(chunk)
    data = b"".join(parts)
    return status, received, dechunked(data) if chunked else data


def dechunked(data: bytes) -> bytes:
    """The body of a whole chunked transfer coding (trailers ignored)."""
    parts: list[bytes] = []
    at = 0
    while True:
        end = data.find(b"\r\n", at)
        if end < 0:
            raise UpstreamError("a chunked body ended without its last chunk")
        size_text = data[at:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise UpstreamError(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            return b"".join(parts)
        start = end + 2
        if len(data) < start + size + 2:
            raise UpstreamError("a chunked body ended inside a chunk")
        parts.append(data[start : start + size])
        at = start + size + 2


class MirrorJob(NamedTuple):
    seq: int
    mirror: Mirror
    path: str
    body: bytes
    headers: dict[str, str]
    primary: list[Prediction]


class MirrorPool:
    """Sends the mirror copies on a few threads; at most ``limit`` copies in flight (queued or being sent).

    A copy's slot is taken (``reserve``) before the primary answer is written and the copy handed over
    (``submit``) after, so whether a copy is dropped does not depend on thread timing.
    """

    def __init__(self, evidence: Evidence, limit: int = MIRROR_LIMIT, workers: int = MIRROR_WORKERS) -> None:
        self.evidence = evidence
        self.limit = limit
        self._workers_wanted = max(1, min(workers, limit))
        self._workers: list[threading.Thread] = []
        self._jobs: queue.SimpleQueue[MirrorJob | None] = queue.SimpleQueue()
        self._in_flight = 0
        self._idle = threading.Condition()
        self.call: Callable[[int, str, str, bytes | None, dict[str, str]], Upstream] = call_upstream

    def reserve(self) -> bool:
        with self._idle:
            if self._in_flight >= self.limit:
                return False
            self._in_flight += 1
            return True

    def submit(self, job: MirrorJob) -> None:
        with self._idle:
            if len(self._workers) < self._workers_wanted:
                worker = threading.Thread(target=self._work, name=f"mirror-{len(self._workers)}", daemon=True)
                self._workers.append(worker)
                worker.start()
        self._jobs.put(job)

    def wait_idle(self, timeout_s: float) -> bool:
        """Until no copy is in flight (tests); False if some still are after ``timeout_s``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)

    def close(self) -> None:
        for _ in self._workers:
            self._jobs.put(None)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                answer = self.call(job.mirror.port, "POST", job.path, job.body, job.headers)
                predictions = predictions_of(answer.status, answer.payload)
                self.evidence.mirrored(job.seq, job.mirror.release_id, answer.status, answer.latency_ms,
                                       predictions, job.primary)  # fmt: skip
            except Exception as exc:  # a copy must never stop the worker
                print(f"router: mirror copy {job.seq} failed: {exc!r}", file=sys.stderr, flush=True)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()


class RouterServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, port: int, home: Path, mirror_limit: int = MIRROR_LIMIT, evidence: Evidence | None = None
    ) -> None:
        self.home = home
        self.targets = TargetFile(home / PRODUCTION_FILE)
        self.evidence = evidence or Evidence()
        self.mirrors = MirrorPool(self.evidence, limit=mirror_limit)
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), RouterHandler)  # last: a failed bind calls server_close()

    @property
    def router_id(self) -> str:
        return self.evidence.router_id

    def counted(self, release_id: str) -> None:
        with self._counts_lock:
            self._counts[release_id] = self._counts.get(release_id, 0) + 1

    def counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def server_close(self) -> None:
        self.mirrors.close()
        super().server_close()


class RouterHandler(BaseHTTPRequestHandler):
    server: RouterServer
    protocol_version = "HTTP/1.1"  # keep client connections alive: no thread and no connect per request
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024  # status line, headers and a small body leave in one send
    timeout = CLIENT_IDLE_TIMEOUT_S

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == ROUTER_PATH:
            routing = self.server.targets.routing()
            self._reply_json(
                200,
                {
                    "router": "mlops-local-production",
                    "router_id": self.server.router_id,
                    "home": str(self.server.home),
                    "pid": os.getpid(),
                    "targets": [target._asdict() for target in routing.targets],
                    "mirror": routing.mirror._asdict() if routing.mirror else None,
                    "counts": self.server.counts(),
                },
            )
        elif parts.path == EVIDENCE_PATH:
            values = parse_qs(parts.query, keep_blank_values=True).get("after", ["0"])
            if len(values) != 1 or not (values[0].isascii() and values[0].isdigit() and len(values[0]) <= 20):
                self._reply_json(400, {"error": f"after must be one whole number >= 0, not {values!r}"})
                return
            self._reply_json(200, self.server.evidence.report(int(values[0])))
        elif parts.path == "/":
            target = self.server.targets.heaviest()
            if target is None:
                self._reply_json(503, {"error": "no production deployment"})
                return
            headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := self.headers.get(name))}
            self._relay(target, call_upstream(target.port, "GET", self.path, None, headers))
        else:
            self._reply_json(404, {"error": f"no route GET {parts.path}; try GET / or POST /score"})

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # the body is not read: the connection cannot carry another request
            self._reply_json(411, {"error": "send the body with a Content-Length"}, close=True)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self._reply_json(400, {"error": "Content-Length is not a number"}, close=True)
            return
        if length > MAX_BODY_BYTES:  # not read: the connection cannot carry another request
            self._reply_json(413, {"error": f"the body is larger than {MAX_BODY_BYTES >> 20} MiB"}, close=True)
            return
        body = self.rfile.read(length)
        path = urlsplit(self.path).path
        if path != "/score":
            self._reply_json(404, {"error": f"no route POST {path}; try POST /score"})
            return
        self._score(body)

    def _score(self, body: bytes) -> None:
        picked = self.server.targets.pick()
        if picked is None:
            self._reply_json(503, {"error": "no production deployment"})
            return
        target, mirror = picked
        self.server.counted(target.release_id)  # every scoring request routed there, answered or not
        evidence = self.server.evidence
        seq = evidence.next_seq()
        headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := self.headers.get(name))}
        answer = call_upstream(target.port, "POST", self.path, body, headers)
        predictions = predictions_of(answer.status, answer.payload)
        evidence.served(seq, target.release_id, answer.status, answer.latency_ms, predictions)
        copy = None
        if mirror is not None:
            if len(body) <= MIRROR_MAX_BODY_BYTES and self.server.mirrors.reserve():
                copy = MirrorJob(seq, mirror, self.path, body, headers, predictions)
            else:
                evidence.dropped(seq, mirror.release_id)
        try:
            self._relay(target, answer)
            self.wfile.flush()  # the caller has its whole answer before the copy is sent
        finally:
            if copy is not None:
                self.server.mirrors.submit(copy)

    def _relay(self, target: Target, answer: Upstream) -> None:
        if answer.error is not None:
            why = f"production version {target.release_id} (port {target.port}) is unreachable: {answer.error}"
            self._reply_json(502, {"error": why})
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("x-mlops-release", target.release_id)
        self.send_header("Content-Length", str(len(answer.payload)))
        self.end_headers()
        self.wfile.write(answer.payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Only answers of 500 and over: a line per request was most of the log and some of the CPU (the
        evidence route has every scoring request)."""
        if isinstance(code, int) and code >= 500:
            super().log_request(code, size)

    def _reply_json(self, status: int, document: dict[str, Any], close: bool = False) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        if close:
            self.send_header("Connection", "close")  # and close_connection, for the server
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
