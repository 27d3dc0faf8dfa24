"""Memory and storage under hostile input: 10 MB bodies, a dead-letter listing, 3,000 redeliveries.

    python -m benchmarks.input_bounds [--bodies 16] [--body-mb 10] [--letters 16] [--redeliveries 3000]

a) A real host (`python -m devhost up`, 127.0.0.1, its own $MLOPS_HOME): its resident memory (VmRSS) after
   start and a few ordinary requests is the baseline; then ``--bodies`` bodies of ``--body-mb`` MB each to
   the Event Grid webhook (413), as many again without a Content-Length (chunked), and one to each POST
   route (413, or 401 from a hook that checks its signature first: either way a 4xx and nothing kept);
   then ``--letters`` events of about 1 MB each (within Event Grid's limit) that are dead-lettered, and
   ``GET /api/dead-letters``: its size. Before the limits, 16 bodies of 10 MB took the host from 93 to
   672 MB and that listing was 162 MB.
b) In-process (no-op platform adapters, the real SQLite store): one BuildCompleted, then ``--redeliveries``
   redeliveries of it; the release document's size after them against its size after the first duplicate
   (before duplicates were counted: 323 KB after 3,000).
Prints the figures, each ratio to its baseline from the same run, and PASS/MISS; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from rich.table import Table

from benchmarks.common import git_revision, machine_summary, verdict, wide_console
from benchmarks.noop_ports import noop_orchestrator
from devhost.settings import REPO_ROOT, apply_app_setting_defaults
from functions.domain.ids import release_id_for_build
from platforms.local.inference_server import free_port
from platforms.local.store import SqliteReleaseStore
from tests import payloads as p

TARGET_RSS_GROWTH_MB = 50.0  # under every oversized body: the host must not buffer them
TARGET_LISTING_KB = 200.0  # a page of dead letters: excerpts, not payloads
TARGET_DOCUMENT_RATIO = 1.05  # the document after N redeliveries / after one
POST_ROUTES = ("hooks/azure-devops", "hooks/github", "hooks/generic", "releases/x/approve", "production/rollback")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_host(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "MLOPS_HOME": str(home), "MLOPS_HOST_URL": f"http://127.0.0.1:{port}"}
    env["MLOPS_PRODUCTION_PORT"] = str(free_port())
    for name in ("MLOPS_HOOK_SECRET", "MLOPS_GITHUB_WEBHOOK_SECRET", "MLOPS_GENERIC_WEBHOOK_SECRET"):
        env[name] = os.urandom(16).hex()  # configured hooks: they read (and refuse) the body, not answer 503
    apply_app_setting_defaults(env)
    log = open(home / "host.log", "wb")  # noqa: SIM115 - the host process owns it until it ends
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "up", "--port", str(port)], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/api/health", timeout=2).ok:
                return process, base
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the host did not start: {(home / 'host.log').read_text()[-2000:]}")


def webhook(base: str, function: str = "on_build_event") -> str:
    return f"{base}/runtime/webhooks/eventgrid?functionName={function}"


NOTIFY = {"aeg-event-type": "Notification", "content-type": "application/json"}


def chunked(megabytes: int) -> Iterator[bytes]:
    for _ in range(megabytes):
        yield b" " * (1024 * 1024)


def post_status(url: str, body: bytes | Iterator[bytes], headers: dict[str, str]) -> int:
    try:
        return requests.post(url, data=body, headers=headers, timeout=60).status_code
    except requests.ConnectionError:
        return 413  # the host answered 413 and closed before the client finished sending: refused unread


def host_figures(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-bounds-") as directory:
        home = Path(directory)
        process, base = start_host(home)
        try:
            for n in range(20):  # ordinary traffic first: the baseline is a host that has served requests
                requests.get(f"{base}/api/releases", timeout=10)
                requests.post(webhook(base), json=[{"id": f"warm-{n}", "eventType": "Bad.Type"}], headers=NOTIFY)
            baseline = rss_mb(process.pid)
            body = b"[" + b" " * (args.body_mb * 1024 * 1024) + b"]"
            statuses = [post_status(webhook(base), body, NOTIFY) for _ in range(args.bodies)]
            # The same without a Content-Length (chunked): the host must count as it reads and keep nothing.
            statuses += [post_status(webhook(base), chunked(args.body_mb), NOTIFY) for _ in range(args.bodies)]
            for route in POST_ROUTES:
                statuses += [post_status(f"{base}/api/{route}", body, {"content-type": "application/json"})]
            after_bodies = rss_mb(process.pid)
            padding = ["z" * 60_000] * 16  # about 1 MB in strings each within the string limit
            for n in range(args.letters):
                event = {"id": f"big-{n}", "eventType": "Nobody.Handles.This", "data": {"padding": padding}}
                requests.post(webhook(base), json=[event], headers=NOTIFY, timeout=60)
            listing = requests.get(f"{base}/api/dead-letters?limit=500", timeout=60)
            after_letters = rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(30)
    return {
        "baseline_mb": baseline,
        "after_bodies_mb": after_bodies,
        "after_letters_mb": after_letters,
        "refused": sum(400 <= status < 500 for status in statuses),
        "sent": len(statuses),
        "listing_kb": len(listing.content) / 1024,
        "listed": len(listing.json()["dead_letters"]),
    }


def redelivery_figures(redeliveries: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-bounds-") as directory:
        store = SqliteReleaseStore(Path(directory) / "releases.db")
        orchestrator, _ = noop_orchestrator(store)
        build = p.build_completed("1234")
        release_id = release_id_for_build("1234", "generic")
        orchestrator.receive("on_build_event", build)
        orchestrator.receive("on_build_event", build)
        after_one = store.get(release_id)
        assert after_one is not None
        started = time.perf_counter()
        for _ in range(redeliveries):
            orchestrator.receive("on_build_event", build)
        seconds = time.perf_counter() - started
        after_all = store.get(release_id)
        assert after_all is not None
    return {
        "one_kb": len(json.dumps(after_one.to_json())) / 1024,
        "all_kb": len(json.dumps(after_all.to_json())) / 1024,
        "per_s": redeliveries / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bodies", type=int, default=16)
    parser.add_argument("--body-mb", type=int, default=10)
    parser.add_argument("--letters", type=int, default=16)
    parser.add_argument("--redeliveries", type=int, default=3000)
    args = parser.parse_args(argv)
    console = wide_console()
    console.print(f"input bounds, {git_revision()}: {machine_summary()}")
    host = host_figures(args)
    redelivered = redelivery_figures(args.redeliveries)
    growth = max(host["after_bodies_mb"], host["after_letters_mb"]) - host["baseline_mb"]
    ratio = redelivered["all_kb"] / redelivered["one_kb"]
    table = Table(title="Memory and storage under hostile input")
    for column in ("figure", "measured", "baseline", "ratio", "target", "result"):
        table.add_column(column)
    table.add_row(
        f"host RSS after 2 × {args.bodies} × {args.body_mb} MB webhook bodies (sized, chunked) + one per POST route",
        f"{host['after_bodies_mb']:.0f} MB ({host['refused']:.0f} of {host['sent']:.0f} refused with a 4xx)",
        f"{host['baseline_mb']:.0f} MB",
        f"{host['after_bodies_mb'] / host['baseline_mb']:.2f}",
        f"growth ≤ {TARGET_RSS_GROWTH_MB:.0f} MB",
        verdict(growth <= TARGET_RSS_GROWTH_MB and host["refused"] == host["sent"]),
    )
    table.add_row(
        f"GET /api/dead-letters after {args.letters} dead letters of ~1 MB",
        f"{host['listing_kb']:.1f} KB ({host['listed']:.0f} letters); host RSS {host['after_letters_mb']:.0f} MB",
        f"{args.letters} MB of payloads",
        f"{host['listing_kb'] / 1024 / args.letters:.4f}",
        f"≤ {TARGET_LISTING_KB:.0f} KB",
        verdict(host["listing_kb"] <= TARGET_LISTING_KB),
    )
    table.add_row(
        f"release document after {args.redeliveries} redeliveries of one event",
        f"{redelivered['all_kb']:.2f} KB ({redelivered['per_s']:.0f} redeliveries/s)",
        f"{redelivered['one_kb']:.2f} KB after one",
        f"{ratio:.3f}",
        f"≤ {TARGET_DOCUMENT_RATIO}",
        verdict(ratio <= TARGET_DOCUMENT_RATIO),
    )
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
