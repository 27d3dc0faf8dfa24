#!/usr/bin/env python3
"""Scan the infrastructure code: the Bicep in infra/ and the CI pipelines in pipelines/.

    .venv-iac/bin/python infra/check.py [ROOT] [-v]

ROOT is the repository root (default: the one this file is in); it must hold infra/ and pipelines/.
Run it with the interpreter of .venv-iac (requirements-iac.txt: checkov, then pycep-parser 0.7.1 over
checkov's pin); it needs nothing else.

1. Every infra/**/*.bicep is parsed with pycep-parser, the parser checkov uses. checkov itself only
   counts a file it cannot parse as a "parsing error", runs no check on it and exits 0, so a parse
   failure is reported here with the file, the line and the parser's message.
2. checkov runs once, offline (--skip-download), on a temporary directory holding copies of
   infra/**/*.bicep (framework bicep) and of pipelines/*.yml under .github/workflows/ (frameworks
   github_actions, whose checks only look at files there, and azure_pipelines, which takes files
   named *azure-pipelines.yml). Findings name the files as they are in the repository.
3. It fails (exit 1) on: a Bicep or pipeline file that does not parse; a parsing error in checkov's
   report; a failed check; an inline skip without a reason (checkov accepts `checkov:skip=ID` and
   `checkov:skip=ID:` and records "No comment provided" / ""), or one that skips nothing (unknown
   id, a check that does not apply to the resource, or a comment outside the resource's body); a file
   scanned with no check result although checkov has checks for it (a Bicep file declaring a resource
   type checkov has checks for, every GitHub workflow, an Azure Pipelines file with jobs or stages).

Inline skips go inside the resource body: `// checkov:skip=CKV_AZURE_17: why` (Bicep), `# checkov:skip=...`
(YAML). Exit status: 0 clean, 1 findings, 2 the scan could not run (wrong environment, checkov crashed).
checkov's own configuration from the environment (CKV_*, BC_*, PRISMA_*) and from a .checkov.yaml is
not used: the result depends on the files only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PYCEP_MINIMUM = (0, 7, 1)  # older versions (checkov's pin, 0.5.1) fail on long comment blocks in objects
CHECKOV_TIMEOUT_S = 600
BICEP_FRAMEWORKS = ("bicep",)
PIPELINE_FRAMEWORKS = ("github_actions", "azure_pipelines")
# checkov's skip comment (checkov.common.comment.enum.COMMENT_REGEX, repeated so that a reason is read the same way).
SKIP_COMMENT = re.compile(
    r"(checkov:skip=|bridgecrew:skip=|cortex:skip=) *([A-Za-z_\d-]+(?:,[A-Za-z_\d-]+)*)?(:[^\n]*)?"
)
NO_REASON = {"", "No comment provided"}  # what checkov records for `skip=ID:` and `skip=ID`
AZURE_PIPELINES_NAMES = ("azure-pipelines.yml", "azure-pipelines.yaml")  # what checkov's azure_pipelines runner takes


class ScanError(Exception):
    """The scan itself could not run (exit 2)."""


@dataclass
class Skip:
    file: str
    line: int
    check_id: str


@dataclass
class Result:
    framework: str
    status: str  # passed, failed, skipped
    check_id: str
    check_name: str
    file: str  # relative to ROOT, as the files are in the repository (pipelines/x.yml, not the copy)
    resource: str
    lines: tuple[int, int]
    reason: str = ""


@dataclass
class Scan:
    root: Path
    findings: list[str] = field(default_factory=list)
    parsed: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    parsing_errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)  # framework -> files it was given

    def rel(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()


# ---- environment ------------------------------------------------------------------------------------


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_environment() -> tuple[str, str]:
    checkov, pycep = _version("checkov"), _version("pycep-parser")
    install = (
        "create .venv-iac with `make iac` (python3 -m venv .venv-iac && .venv-iac/bin/pip install -r "
        "requirements-iac.txt && .venv-iac/bin/pip install --no-deps pycep-parser==0.7.1) and run this with "
        ".venv-iac/bin/python"
    )
    if not checkov:
        raise ScanError(f"checkov is not installed for {sys.executable}: {install}")
    if not pycep or _version_tuple(pycep) < PYCEP_MINIMUM:
        raise ScanError(
            f"pycep-parser {pycep or '(none)'} for {sys.executable}; 0.7.1 or later is needed (checkov's pin "
            f"fails on long comment blocks and checkov then skips the file without failing): {install}"
        )
    return checkov, pycep


# ---- 1: parse ----------------------------------------------------------------------------------------


def _parser_message(error: Exception, text: str) -> str:
    """The parser's error in one or two lines: position, what it found, what it expected, the source line."""
    line, column = getattr(error, "line", None), getattr(error, "column", None)
    token = getattr(error, "token", None)
    if token is not None:
        what = f"unexpected {token.type} {str(token)!r}" if str(token) else f"unexpected {token.type}"
    elif getattr(error, "char", None) is not None:
        what = f"unexpected character {error.char!r}"  # type: ignore[attr-defined]
    else:
        first = str(error).strip().splitlines()
        what = f"{type(error).__name__}: {first[0] if first else ''}"
    expected = sorted(name for name in (getattr(error, "expected", None) or ()) if not name.startswith("_"))
    if expected:
        shown = ", ".join(expected[:10]) + (", ..." if len(expected) > 10 else "")
        what += f"; expected one of {shown}"
    where = f"{line}:{column}: " if isinstance(line, int) and line > 0 else ""
    source = text.splitlines()[line - 1].strip() if isinstance(line, int) and 0 < line <= len(text.splitlines()) else ""
    return f"{where}{what}" + (f"\n      {source}" if source else "")


def parse_bicep(scan: Scan, files: list[Path]) -> dict[str, set[str]]:
    """Parse every Bicep file with pycep; returns file -> types of the resources it creates (not `existing`)."""
    from pycep import BicepParser

    parser = BicepParser()
    created: dict[str, set[str]] = {}
    for path in files:
        name = scan.rel(path)
        text = path.read_text(encoding="utf-8")
        try:
            template = parser.parse(text=text)
        except Exception as error:  # lark's UnexpectedInput family, or pycep's own ValueError
            scan.findings.append(f"PARSE  {name}:{_parser_message(error, text)}")
            continue
        scan.parsed.append(name)
        created[name] = {
            str(resource.get("type"))
            for resource in (template.get("resources") or {}).values()
            if isinstance(resource, dict) and not resource.get("existing")
        }
    return created


def parse_pipelines(scan: Scan, files: list[Path]) -> dict[str, dict[str, Any]]:
    """Read each pipeline file as YAML (checkov's yaml dependency); returns file -> its top-level mapping."""
    import yaml

    documents: dict[str, dict[str, Any]] = {}
    for path in files:
        name = scan.rel(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            scan.findings.append(f"PARSE  {name}: {' '.join(str(error).split())}")
            continue
        if not isinstance(document, dict):
            scan.findings.append(f"PARSE  {name}: not a YAML mapping")
            continue
        scan.parsed.append(name)
        documents[name] = document
    return documents


def skip_comments(scan: Scan, files: list[Path]) -> list[Skip]:
    skips = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if match:
                skips.append(Skip(scan.rel(path), number, match[2] or ""))
    return skips


def checked_bicep_types() -> set[str]:
    """Resource types checkov 3 has Bicep checks for (its ARM checks register with the Bicep registry too)."""
    import checkov.arm.checks.resource
    import checkov.bicep.checks.resource  # noqa: F401  (registers)
    from checkov.bicep.checks.resource.registry import registry

    types = set(registry.checks) | set(registry.wildcard_checks)
    for check in registry.graph_registry.checks:
        types.update(getattr(check, "resource_types", None) or ())
    return types


# ---- 2: checkov -------------------------------------------------------------------------------------


def _checkov_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CKV_", "BC_", "PRISMA_"))}
    env.update({"LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore"})
    return env


def start_checkov(directory: Path, frameworks: tuple[str, ...], cwd: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "checkov.main", "--directory", str(directory), "--framework", *frameworks]
    command += ["--skip-download", "--output", "json", "--compact"]
    return subprocess.Popen(
        command, cwd=cwd, env=_checkov_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_checkov(process: subprocess.Popen[str], what: str) -> list[dict[str, Any]]:
    try:
        stdout, stderr = process.communicate(timeout=CHECKOV_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise ScanError(f"checkov on {what} did not finish in {CHECKOV_TIMEOUT_S} s") from None
    start = min((i for i in (stdout.find("["), stdout.find("{")) if i >= 0), default=-1)
    try:
        if start < 0:
            raise ValueError("no JSON in its output")
        report, end = json.JSONDecoder().raw_decode(stdout, start)
        if stdout[end:].strip():
            raise ValueError("more than one JSON document in its output")
    except ValueError as error:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
        raise ScanError(
            f"checkov on {what} exited {process.returncode} without a JSON report ({error}):\n{tail}"
        ) from None
    reports = report if isinstance(report, list) else [report]
    # With no result at all checkov prints only a summary, without check_type.
    return [r for r in reports if isinstance(r, dict) and "check_type" in r]


def collect(scan: Scan, reports: list[dict[str, Any]], where: dict[Path, str]) -> None:
    """Add checkov's records to the scan; ``where`` maps each scanned file's real path to its repository name."""

    def name_of(path: str) -> str:
        resolved = Path(path).resolve()
        return where.get(resolved, str(path))

    for report in reports:
        framework = str(report["check_type"])
        results = report.get("results") or {}
        for status in ("passed", "failed", "skipped"):
            for record in results.get(f"{status}_checks") or []:
                check_result = record.get("check_result") or {}
                lines = record.get("file_line_range") or [0, 0]
                scan.results.append(
                    Result(
                        framework=framework,
                        status=status,
                        check_id=str(record.get("check_id")),
                        check_name=str(record.get("check_name") or ""),
                        file=name_of(str(record.get("file_abs_path") or record.get("file_path"))),
                        resource=str(record.get("resource") or ""),
                        lines=(int(lines[0]), int(lines[-1])),
                        reason=str(check_result.get("suppress_comment") or "").strip(),
                    )
                )
        errors = [name_of(path) for path in results.get("parsing_errors") or []]
        if errors:
            scan.parsing_errors[framework] = errors


# ---- 3: judge --------------------------------------------------------------------------------------


def judge(
    scan: Scan,
    created: dict[str, set[str]],
    checked_types: set[str],
    pipelines: dict[str, dict[str, Any]],
    skips: list[Skip],
) -> None:
    for framework, files in sorted(scan.parsing_errors.items()):
        for name in files:
            scan.findings.append(f"PARSE  {name}: checkov ({framework}) could not parse it and ran no check on it")

    for result in scan.results:
        where = f"{result.file}:{result.lines[0]}-{result.lines[1]} {result.resource}"
        if result.status == "failed":
            scan.findings.append(f"FAILED {result.check_id} {where}: {result.check_name}")
        elif result.status == "skipped" and result.reason in NO_REASON:
            scan.findings.append(
                f"SKIP   {result.check_id} {where}: skipped without a reason "
                f"(write `checkov:skip={result.check_id}: why`)"
            )

    skipped = defaultdict(list)
    for result in scan.results:
        if result.status == "skipped":
            skipped[(result.file, result.check_id)].append(result.lines)
    for skip in skips:
        ranges = skipped.get((skip.file, skip.check_id), [])
        if not any(first <= skip.line <= last for first, last in ranges):
            scan.findings.append(
                f"SKIP   {skip.check_id or '(no id)'} {skip.file}:{skip.line}: skips nothing (unknown check id, a "
                "check that does not apply to this resource, or a comment outside the resource body)"
            )

    with_results = {(r.framework, r.file) for r in scan.results}
    for name, types in sorted(created.items()):
        if (types & checked_types) and ("bicep", name) not in with_results:
            scan.findings.append(
                f"EMPTY  {name}: scanned with 0 checks, but checkov has checks for "
                f"{', '.join(sorted(types & checked_types))}"
            )
        elif not types & checked_types:
            scan.notes.append(f"{name}: no checkov check covers its resources ({', '.join(sorted(types)) or 'none'})")

    for name, document in sorted(pipelines.items()):
        if name.endswith(AZURE_PIPELINES_NAMES):
            if {"jobs", "stages"} & set(document):
                if ("azure_pipelines", name) not in with_results:
                    scan.findings.append(
                        f"EMPTY  {name}: Azure Pipelines file with jobs or stages scanned with 0 checks"
                    )
            else:
                scan.notes.append(
                    f"{name}: scanned as Azure Pipelines; no checkov check applies to a pipeline of top-level steps "
                    "(its checks look at jobs, stages and container jobs)"
                )
        elif "jobs" in document and ("on" in document or True in document):  # PyYAML reads `on:` as True
            if ("github_actions", name) not in with_results:
                scan.findings.append(
                    f"EMPTY  {name}: GitHub workflow scanned with 0 checks (checkov skips a workflow that does not "
                    "match the GitHub Actions schema)"
                )
        else:
            scan.findings.append(
                f"EMPTY  {name}: neither a GitHub workflow (on:, jobs:) nor named *azure-pipelines.yml: no checkov "
                "framework scans it"
            )


# ---- main ----------------------------------------------------------------------------------------------


def run(root: Path) -> Scan:
    root = root.resolve()
    scan = Scan(root)
    infra, pipelines_dir = root / "infra", root / "pipelines"
    if not infra.is_dir():
        raise ScanError(f"{infra} is not a directory")
    bicep_files = sorted(infra.rglob("*.bicep"))
    pipeline_files = sorted(p for p in pipelines_dir.glob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    if not bicep_files:
        scan.findings.append("EMPTY  infra/: no *.bicep file to scan")
    if not pipeline_files:
        scan.findings.append("EMPTY  pipelines/: no *.yml file to scan")

    with tempfile.TemporaryDirectory(prefix="infra-check-") as temporary:
        # One checkov run over one directory: copies of infra/**/*.bicep, and of pipelines/* under
        # .github/workflows/ (the only place its GitHub Actions checks look). One run, because checkov 3.3
        # given several --directory reports the first directory's Bicep results again for each of the others.
        work = Path(temporary)
        tree = work / "scan"
        workflows = tree / ".github" / "workflows"
        workflows.mkdir(parents=True)
        where: dict[Path, str] = {}
        for path in bicep_files:
            copy = tree / path.relative_to(root)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
            where[copy.resolve()] = scan.rel(path)
        for path in pipeline_files:
            copy = workflows / path.name
            shutil.copyfile(path, copy)
            where[copy.resolve()] = scan.rel(path)
        azure = [p for p in pipeline_files if p.name.endswith(AZURE_PIPELINES_NAMES)]
        scan.files = {
            "bicep": [scan.rel(p) for p in bicep_files],
            "github_actions": [scan.rel(p) for p in pipeline_files if p not in azure],
            "azure_pipelines": [scan.rel(p) for p in azure],
        }
        # checkov runs in the background while this process parses the files and loads the check registry.
        process = start_checkov(tree, (*BICEP_FRAMEWORKS, *PIPELINE_FRAMEWORKS), work)
        try:
            created = parse_bicep(scan, bicep_files)
            pipelines = parse_pipelines(scan, pipeline_files)
            skips = skip_comments(scan, bicep_files + pipeline_files)
            checked_types = checked_bicep_types()
            collect(scan, finish_checkov(process, "infra/ and pipelines/"), where)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    judge(scan, created, checked_types, pipelines, skips)
    return scan


def summary(scan: Scan, versions: tuple[str, str], seconds: float, verbose: bool) -> str:
    lines = [f"infra/check.py: checkov {versions[0]}, pycep-parser {versions[1]}, {seconds:.1f} s"]
    lines.append(f"parsed {len(scan.parsed)} files: {', '.join(scan.parsed) or 'none'}")
    for framework in (*BICEP_FRAMEWORKS, *PIPELINE_FRAMEWORKS):
        counts = {status: 0 for status in ("passed", "failed", "skipped")}
        for result in scan.results:
            if result.framework == framework:
                counts[result.status] += 1
        files = scan.files.get(framework, [])
        errors = len(scan.parsing_errors.get(framework, []))
        lines.append(
            f"  {framework:<16} {len(files)} file(s): {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped, {errors} parsing errors"
        )
    lines += [f"  note: {note}" for note in scan.notes]
    if verbose:
        for result in scan.results:
            if result.status == "skipped":
                lines.append(f"  skipped {result.check_id} {result.file} {result.resource}: {result.reason}")
    if scan.findings:
        lines.append(f"{len(scan.findings)} finding(s):")
        lines += [f"  {finding}" for finding in scan.findings]
    else:
        lines.append("no findings")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parents[1])
    arguments.add_argument("-v", "--verbose", action="store_true", help="also list every skipped check and its reason")
    options = arguments.parse_args(argv)
    started = time.monotonic()
    try:
        versions = check_environment()
        scan = run(options.root)
    except ScanError as error:
        print(f"infra/check.py: cannot scan: {error}", file=sys.stderr)
        return 2
    print(summary(scan, versions, time.monotonic() - started, options.verbose))
    return 1 if scan.findings else 0


if __name__ == "__main__":
    sys.exit(main())
