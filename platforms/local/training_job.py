"""One local retraining job, as its own process: ``python -m platforms.local.training_job <job dir>``.

LocalTraining starts this in a session of its own (so its steps form one process group that outlives
the host and that ``mlops down`` stops whole) after writing the job's ``status.json`` with the steps'
command lines. This runs them in order, one subprocess each, recording every step's start, exit code
and duration in ``status.json``, and the job's end: completed, or failed naming the step. It publishes
nothing: whoever watches the job (the host that started it, or one that adopted it) announces the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from platforms.local.files import read_json, utc_now, write_json_atomic
from platforms.local.processes import log_tail

ERROR_LINES = 5
STATUS_FILE = "status.json"


def run_job(job_dir: Path) -> int:
    """Run the job's steps; 0 when it completed, 1 when a step failed (status.json says which)."""
    status: dict[str, Any] = read_json(job_dir / STATUS_FILE)
    status["pid"] = os.getpid()  # the job is alive while this process is (LocalTraining.status)
    failed_step, error = None, ""
    step = next(iter(status["commands"]), "")
    try:
        for step, command in status["commands"].items():
            status["current_step"] = step
            write_json_atomic(job_dir / STATUS_FILE, status)
            exit_code = _run_step(job_dir, step, command, status)
            if exit_code != 0:
                tail = log_tail(job_dir / "logs" / f"{step}.log", ERROR_LINES)
                failed_step, error = step, f"exit code {exit_code}\n{tail}"
                break
    except Exception as exc:  # the job must end in a recorded state, whatever broke
        failed_step, error = step, f"{type(exc).__name__}: {exc}"
    status.update(
        state="failed" if failed_step else "completed",
        current_step=None,
        finished_at=utc_now(),
        failed_step=failed_step,
        error=error or None,
    )
    write_json_atomic(job_dir / STATUS_FILE, status)
    return 1 if failed_step else 0


def _run_step(job_dir: Path, step: str, command: list[str], status: dict[str, Any]) -> int:
    record: dict[str, Any] = {"command": command, "started_at": utc_now(), "exit_code": None}
    status["steps"][step] = record
    write_json_atomic(job_dir / STATUS_FILE, status)
    started = time.perf_counter()
    with open(job_dir / "logs" / f"{step}.log", "wb") as log:
        # The job's environment and working directory (LocalTraining chose both) pass to the step.
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    record.update(exit_code=done.returncode, finished_at=utc_now(), seconds=round(time.perf_counter() - started, 3))
    write_json_atomic(job_dir / STATUS_FILE, status)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / STATUS_FILE).is_file():
        print("usage: python -m platforms.local.training_job <job dir holding status.json>", file=sys.stderr)
        return 2
    return run_job(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
