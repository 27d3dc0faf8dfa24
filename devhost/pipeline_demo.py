"""`make demo` (for now): the ML half of the release loop on this machine.

data checks -> train -> data checks against the new reference profile -> evaluate (no
champion yet) -> gate -> serve with azmlinfsrv on 127.0.0.1 -> score holdout rows over HTTP.
Every step is the same CLI an Azure ML pipeline step runs. Outputs go to $MLOPS_HOME/demo.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests
from rich.console import Console
from rich.table import Table

from devhost.settings import REPO_ROOT, SCORE_SCRIPT, mlops_home
from functions.gate import GatePolicy, decide
from platforms.local.inference_server import InferenceServer

console = Console(highlight=False)
ROWS_TO_SCORE = 5


class StepFailed(RuntimeError):
    pass


def run_step(title: str, module: str, *args: str) -> float:
    """Run ``python -m module args`` as the pipeline would; show its output; return seconds."""
    started = time.perf_counter()
    with console.status(f"[bold]{title}[/]…"):
        done = subprocess.run(
            [sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
    elapsed = time.perf_counter() - started
    for line in (done.stdout + done.stderr).rstrip().splitlines():
        console.print(f"    {line}")
    if done.returncode != 0:
        raise StepFailed(f"{title} failed (exit {done.returncode})")
    console.print(f"[green]✔[/] {title} [dim]({elapsed:.1f} s)[/]")
    return elapsed


def main() -> int:
    work = mlops_home() / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    model_dir = work / "model"
    console.rule("[bold]ML pipeline: data checks → train → evaluate → gate → serve")
    console.print(f"outputs in {work}")
    try:
        run_step(
            "Data checks (schema, missing, ranges, duplicates, target)",
            "ml_pipeline.data_checks",
            "--data",
            "diabetes",
            "--report",
            str(work / "data_checks.json"),
        )
        run_step(
            "Train Ridge(alpha=0.4) on the diabetes data",
            "ml_pipeline.train",
            "--data",
            "diabetes",
            "--output",
            str(model_dir),
        )
        run_step(
            "Data checks against the new reference profile (ranges, shift, PSI)",
            "ml_pipeline.data_checks",
            "--data",
            "diabetes",
            "--reference",
            str(model_dir / "profile.json"),
            "--report",
            str(work / "data_checks_reference.json"),
        )
        run_step(
            "Evaluate the candidate (no champion yet)",
            "ml_pipeline.evaluate",
            "--candidate",
            str(model_dir),
            "--champion",
            "none",
            "--data",
            "diabetes",
            "--output",
            str(work / "evaluation.json"),
        )
    except StepFailed as exc:
        console.print(f"[red]✘ {exc}[/]")
        return 1

    evaluation = json.loads((work / "evaluation.json").read_text())
    decision = decide(evaluation, GatePolicy())
    (work / "gate.json").write_text(json.dumps(decision.to_json(), indent=2))
    mark = "[green]✔ promote[/]" if decision.promote else "[yellow]✘ hold back[/]"
    console.print(f"{mark} Gate: {decision.reason}")

    metrics = Table(title="Holdout metrics (candidate)")
    for name in ("mse", "rmse", "mae", "r2"):
        metrics.add_column(name, justify="right")
    cand = evaluation["metrics"]["candidate"]
    metrics.add_row(*(f"{cand[m]:.3f}" for m in ("mse", "rmse", "mae", "r2")))
    console.print(metrics)
    return serve_and_score(model_dir, work)


def serve_and_score(model_dir: Path, work: Path) -> int:
    import joblib
    import numpy as np

    from ml_pipeline.dataset import load_dataset

    card = json.loads((model_dir / "model_card.json").read_text())
    frame = load_dataset("diabetes")
    holdout = card["split"]["holdout_index"][:ROWS_TO_SCORE]
    rows = frame[card["features"]].to_numpy(dtype=np.float64)[holdout]
    expected = joblib.load(model_dir / "model.joblib").predict(rows)

    server = InferenceServer(SCORE_SCRIPT, model_dir, work / "azmlinfsrv.log")
    with console.status("[bold]Starting azmlinfsrv with scoring/score.py[/]…"):
        started = time.perf_counter()
        server.start()
    console.print(
        f"[green]✔[/] azmlinfsrv serving at {server.score_url} [dim]({time.perf_counter() - started:.1f} s)[/]"
    )
    try:
        response = requests.post(server.score_url, json={"data": rows.tolist()}, timeout=30)
        bad = requests.post(server.score_url, json={"data": [[1, 2, 3]]}, timeout=30)
    finally:
        server.stop()
        console.print("[green]✔[/] azmlinfsrv stopped")
    if response.status_code != 200:
        console.print(f"[red]✘ /score answered {response.status_code}: {response.text}[/]")
        return 1
    predictions = response.json()["result"]
    table = Table(title=f"Holdout rows scored over HTTP ({server.score_url})")
    table.add_column("row", justify="right")
    table.add_column("actual", justify="right")
    table.add_column("prediction (HTTP)", justify="right")
    table.add_column("model.predict", justify="right")
    actual = frame[card["target"]].to_numpy()[holdout]
    for index, truth, got, want in zip(holdout, actual, predictions, expected, strict=True):
        table.add_row(str(index), f"{truth:.0f}", f"{got:.2f}", f"{want:.2f}")
    console.print(table)
    if predictions != expected.tolist():
        console.print("[red]✘ HTTP predictions differ from model.predict[/]")
        return 1
    console.print(
        f"[green]✔[/] HTTP predictions equal model.predict; a bad request got {bad.status_code}: {bad.json()['error']}"
    )
    console.print(f"Artifacts: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
