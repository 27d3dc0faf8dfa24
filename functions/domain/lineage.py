"""What a release's record says about its model and image, and what the registry and the record keep."""

from __future__ import annotations

from typing import Any

from functions.domain.refs import ImageRef, ModelRef
from functions.domain.release import Release


def model_of(release: Release) -> ModelRef:
    """The registered candidate model of a release past registration."""
    model = (release.candidate or {}).get("model") or {}
    return ModelRef(model["name"], str(model["version"]), model["location"], dict(model.get("tags") or {}))


def image_of(release: Release) -> ImageRef:
    image = release.image or {}
    return ImageRef(image["repository"], image["tag"], image.get("digest", ""), image.get("location", ""))


def lineage_tags(release: Release, evaluation: dict[str, Any]) -> dict[str, str]:
    """Registry tags that lead from a model version back to its release, build, commit, job and data."""
    trigger = release.trigger
    metrics = (evaluation.get("metrics") or {}).get("candidate") or {}
    tags = {
        "release_id": release.id,
        "build_id": str(trigger.get("buildId") or ""),
        "commit": str(trigger.get("sourceVersion") or ""),
        "job": release.job_name,
        "data_sha256": str(((evaluation.get("compared") or {}).get("data") or {}).get("sha256") or ""),
    }
    tags.update({f"metric_{name}": f"{value:.6g}" for name, value in metrics.items()})
    return tags


def evaluation_summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """What the release keeps of the evaluation report: the numbers, not the whole document."""
    keep = ("n", "metrics", "differences", "note", "bootstrap")
    summary = {key: evaluation.get(key) for key in keep if key in evaluation}
    compared = evaluation.get("compared") or {}
    summary["compared"] = {k: compared.get(k) for k in ("candidate", "champion", "holdout") if k in compared}
    return summary


def checks_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the release keeps of the data-check report: each check's verdict and summary, not its details."""
    checks = [
        {"name": str(c.get("name", "")), "status": str(c.get("status") or ("passed" if c.get("passed") else "failed")),
         "summary": str(c.get("summary", ""))[:300]}
        for c in report.get("checks") or []
        if isinstance(c, dict)
    ]  # fmt: skip
    return {
        "passed": bool(report.get("passed")),
        "failed": [str(name) for name in report.get("failed") or []],
        "data": str(report.get("data") or ""),
        "n_rows": report.get("n_rows"),
        "against_reference": bool(report.get("reference")),
        "checks": checks,
    }


def gate_evidence(release: Release) -> dict[str, Any]:
    """The gate's decision in numbers: metric, champion, candidate, improvement and its interval ({} before it)."""
    gate = release.gate or {}
    if not gate:
        return {}
    evidence = gate.get("evidence") or {}
    keep = ("metric", "champion", "candidate", "improvement", "interval", "confidence", "threshold", "n")
    numbers = {key: evidence.get(key) for key in keep if evidence.get(key) is not None}
    mode = (evidence.get("policy") or {}).get("mode")
    return {"promote": bool(gate.get("promote")), "reason": str(gate.get("reason") or ""), "mode": mode, **numbers}


def release_lineage(release: Release) -> dict[str, str]:
    """Where the release's model came from, as far as it got: build, commit, branch, data, model, image."""
    trigger = release.trigger
    model = (release.candidate or {}).get("model") or {}
    image = release.image or {}
    compared = ((release.gate or {}).get("evaluation") or {}).get("compared") or {}
    data_sha = (model.get("tags") or {}).get("data_sha256") or (compared.get("candidate") or {}).get("data_sha256")
    found = {
        "build": str(trigger.get("buildNumber") or trigger.get("buildId") or ""),
        "commit": str(trigger.get("sourceVersion") or ""),
        "branch": str(trigger.get("sourceBranch") or ""),
        "data_sha256": str(data_sha or ""),
        "model": f"{model['name']}:{model['version']}" if model else "",
        "image": f"{image['repository']}:{image['tag']}" if image.get("repository") else "",
        "image_digest": str(image.get("digest") or ""),
    }
    return {key: value for key, value in found.items() if value}
