"""Soak: a host running releases and scoring traffic for minutes, its resources sampled as it goes.

    python -m benchmarks.soak [--minutes 10] [--rate 20] [--interval 5] [--max-releases 200]

Starts `mlops up` on free 127.0.0.1 ports with a fresh $MLOPS_HOME and, until --minutes pass (or
--max-releases), runs release after release to live (build, training, gate, staging, approval, beside,
direct tests, traffic) while --rate scoring requests per second go to production. Every --interval
seconds it samples the host process (resident memory, open file descriptors, threads) and the home's
other processes (how many, their memory). The baseline, measured in the same run, is the first sample
taken once the first release is live (everything warmed up); each figure is printed with its last and
largest value and the ratio last / baseline. Targets: host memory ratio ≤ 1.5, file descriptors and
threads within +10 of the baseline, and the home's processes bounded: in the second half of the run
never more than the most of the first half (they rise from the baseline while a previous deployment is
kept warm and a release stages beside production, then must stop rising; judged once 8 releases went
live). Prints PASS/MISS; always exits 0. Bounded in time and count.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from benchmarks.common import git_revision, machine_summary, verdict, wide_console
from platforms.local.inference_server import free_port
from platforms.local.processes import owned_processes
from tests.crash_lab import HostProcess, live_traffic, new_release_id, run_to_the_end

console = wide_console()
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
MIN_RELEASES_TO_JUDGE = 8  # releases live before the processes' bound is judged


@dataclass(frozen=True)
class Sample:
    at_s: float
    releases: int
    host_rss_mb: float
    host_fds: int
    host_threads: int
    children: int
    children_rss_mb: float


def _rss_mb(pid: int) -> float:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB / 1024
    except (OSError, IndexError, ValueError):
        return 0.0


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def sample(host_pid: int, home: Path, started: float, releases: int) -> Sample:
    children = owned_processes(home)
    return Sample(
        at_s=time.monotonic() - started,
        releases=releases,
        host_rss_mb=_rss_mb(host_pid),
        host_fds=_fds(host_pid),
        host_threads=_threads(host_pid),
        children=len(children),
        children_rss_mb=sum(_rss_mb(p.pid) for p in children),
    )


def run(minutes: float, rate: float, interval_s: float, max_releases: int) -> tuple[list[Sample], int, int, str]:
    """The samples, the releases that went live and those that did not, and what the scoring traffic got."""
    samples: list[Sample] = []
    live = failed = 0
    with tempfile.TemporaryDirectory(prefix="mlops-soak-") as directory:
        home = Path(directory)
        host = HostProcess(home, free_port(), free_port())
        host.start()
        assert host.process is not None
        host_pid, run_id, stop = host.process.pid, uuid.uuid4().hex[:6], threading.Event()

        def one_release() -> bool:
            release_id, event = new_release_id(f"soak-{run_id}-{live + failed}")
            release = run_to_the_end(host, release_id, event)
            if not release or release["state"] != "live":
                console.print(f"  {release_id} ended {(release or {}).get('state')}: {(release or {}).get('error')}")
            return bool(release and release["state"] == "live")

        try:
            # Warm-up: the first release goes live before the traffic and the samples start.
            live, failed = (1, 0) if one_release() else (0, 1)
            started = time.monotonic()

            def sampler() -> None:
                samples.append(sample(host_pid, home, started, live))  # the baseline
                while not stop.wait(interval_s):
                    samples.append(sample(host_pid, home, started, live))

            thread = threading.Thread(target=sampler, name="soak-sampler", daemon=True)
            with live_traffic(host, rate) as traffic:
                thread.start()
                while time.monotonic() - started < minutes * 60 and live + failed < max_releases:
                    if one_release():
                        live += 1
                    else:
                        failed += 1
                stop.set()
                thread.join(timeout=interval_s + 5)
                scoring = f"{traffic.sent} scoring requests sent, {traffic.failed} failed"
        finally:
            stop.set()
            host.down()
    return samples, live, failed, scoring


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to soak (default 10)")
    parser.add_argument("--rate", type=float, default=20.0, help="scoring requests per second (default 20)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--max-releases", type=int, default=200, help="stop after this many releases")
    args = parser.parse_args(argv)
    console.print(f"[bold]soak[/] · {args.minutes:g} min, {args.rate:g} req/s · {machine_summary()} · {git_revision()}")
    samples, live, failed, scoring = run(args.minutes, args.rate, args.interval, args.max_releases)
    console.print(f"  {scoring}")
    warmed = samples
    if len(warmed) < 4:
        console.print("[red]too few samples; soak longer[/]")
        return 0
    base, last, half = warmed[0], warmed[-1], len(warmed) // 2
    table = Table(title=f"{len(warmed)} samples after warm-up, {live} releases live, {failed} not")
    # The home's processes rise from the baseline as a previous deployment is kept warm and a release
    # stages beside production; what matters is that they stop rising.
    for column in ("figure", "baseline", "last", "largest", "last / baseline", "target", "result"):
        table.add_column(column, justify="left" if column == "figure" else "right")

    def no_growth(name: str) -> bool:
        """Bounded: the second half of the run never goes above the largest of the first half."""
        first, second = [getattr(s, name) for s in warmed[:half]], [getattr(s, name) for s in warmed[half:]]
        return max(second) <= max(first)

    checks = [
        ("host memory (MB)", "host_rss_mb", lambda b, end, top: end / b <= 1.5, "≤ 1.5×"),
        ("host file descriptors", "host_fds", lambda b, end, top: top - b <= 10, "≤ +10"),
        ("host threads", "host_threads", lambda b, end, top: top - b <= 10, "≤ +10"),
        # The count climbs for the first few releases (a deployment kept warm, one staging beside): a run
        # too short to leave that behind in its first half cannot show whether it stops.
        (
            "processes of the home",
            "children",
            lambda b, end, top: no_growth("children"),
            "2nd half ≤ 1st" if live >= MIN_RELEASES_TO_JUDGE else "—",
        ),
        ("their memory (MB)", "children_rss_mb", lambda b, end, top: True, "—"),
    ]
    passed_all = failed == 0
    for label, name, check, target in checks:
        b, end, top = getattr(base, name), getattr(last, name), max(getattr(s, name) for s in warmed)
        passed = check(b, end, top) if target != "—" else True
        passed_all &= passed
        table.add_row(label, f"{b:.1f}", f"{end:.1f}", f"{top:.1f}", f"{end / b:.2f}" if b else "—", target,
                      verdict(passed) if target != "—" else "—")  # fmt: skip
    console.print(table)
    per_release = (last.host_rss_mb - base.host_rss_mb) / max(1, last.releases - base.releases)
    console.print(f"host memory per release after warm-up: {per_release * 1024:+.0f} KB")
    console.print(f"every release live, every figure within its target: {verdict(passed_all)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
