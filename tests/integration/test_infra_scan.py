"""infra/check.py: checkov and pycep-parser over infra/ and pipelines/, clean on the real files, failing on bad copies.

It runs with the interpreter of .venv-iac (requirements-iac.txt, made by `make iac`), never with the app's
.venv: a missing .venv-iac fails these tests, it does not skip them. A run of the checker is one checkov
process (about ten seconds), so the defects that do not hide each other share one broken copy and one run,
and each test reads its own finding from that run.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IAC_PYTHON = ROOT / ".venv-iac" / "bin" / "python"
CHECK = ROOT / "infra" / "check.py"

# Skips whose reason is missing, each written another way; checkov accepts all three (it records
# "No comment provided" or an empty comment) and passes.
BARE_SKIPS = {"CKV_AZURE_17": "", "CKV_AZURE_212": ":", "CKV_AZURE_222": ":   "}


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    findings: list[str]


def _check(*arguments: str | Path) -> Run:
    if not IAC_PYTHON.exists():
        pytest.fail(f"{IAC_PYTHON} is missing: run `make iac` (it creates .venv-iac from requirements-iac.txt)")
    result = subprocess.run(
        [str(IAC_PYTHON), str(CHECK), *map(str, arguments)], capture_output=True, text=True, timeout=600, check=False
    )
    output = result.stdout + result.stderr
    lines = result.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.endswith("finding(s):")]
    # One finding a line, indented by two spaces (a parse error's source line follows it, indented further).
    findings = (
        [line.strip() for line in lines[starts[0] + 1 :] if line[:2] == "  " and line[2:3] != " "] if starts else []
    )
    return Run(result.returncode, output, findings)


def _copy(root: Path) -> Path:
    """A root with copies of infra/ (its Bicep files) and pipelines/, to break."""
    shutil.copytree(ROOT / "infra", root / "infra", ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    shutil.copytree(ROOT / "pipelines", root / "pipelines")
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _with(run: Run, prefix: str) -> list[str]:
    return [finding for finding in run.findings if finding.startswith(prefix)]


@pytest.fixture(scope="module")
def clean() -> Run:
    return _check()


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One copy with every defect below (none hides another), checked once."""
    root = _copy(tmp_path_factory.mktemp("broken"))
    main = root / "infra" / "main.bicep"
    # 1. A syntax error (an unterminated string) in a module.
    module = root / "infra" / "modules" / "staging-access.bicep"
    _edit(module, "'ML release orchestrator: staging container groups'", "'ML release orchestrator: staging")
    # 2. A failed check that is not skipped: purge protection off again.
    lines = [line for line in main.read_text(encoding="utf-8").splitlines(True) if "enablePurgeProtection" not in line]
    # 3. Skips without a reason on the Function App.
    for check_id, rest in BARE_SKIPS.items():
        [index] = [i for i, line in enumerate(lines) if f"checkov:skip={check_id}:" in line]
        lines[index] = f"  // checkov:skip={check_id}{rest}\n"
    main.write_text("".join(lines), encoding="utf-8")
    # 4. A skip that skips nothing (a typo in the id): the plan's check then fails too.
    _edit(main, "// checkov:skip=CKV_AZURE_225:", "// checkov:skip=CKV_AZURE_2250:")
    # 5. A finding in the GitHub workflow.
    _edit(
        root / "pipelines" / "github-actions.yml",
        "      - name: Unit tests\n",
        "      - name: Unit tests\n        env:\n          ACTIONS_ALLOW_UNSECURE_COMMANDS: true\n",
    )
    return _check(root)


def test_the_real_files_are_clean(clean: Run):
    assert clean.returncode == 0, clean.output
    assert "pycep-parser 0.7.1" in clean.output
    # Every Bicep file parses (main.bicep's seven-line comment in a filter object defeats pycep-parser 0.5.1).
    assert "infra/main.bicep, infra/modules/aks-acrpull.bicep, infra/modules/staging-access.bicep" in clean.output
    summary = {
        line.split()[0]: line for line in clean.output.splitlines() if line.startswith("  ") and "file(s):" in line
    }
    assert set(summary) == {"bicep", "github_actions", "azure_pipelines"}
    for framework in ("bicep", "github_actions"):
        assert " 0 failed" in summary[framework] and " 0 parsing errors" in summary[framework]
        assert " 0 passed" not in summary[framework]
    assert clean.findings == []
    assert clean.output.rstrip().endswith("no findings")


def test_the_broken_copy_fails_with_exactly_its_defects(broken: Run):
    assert broken.returncode == 1, broken.output
    # 2 parse (pycep, checkov), 4 failed (2 on the vault, the plan, the workflow), 3 bare skips, 1 stale skip.
    assert len(broken.findings) == 10, broken.output


def test_a_bicep_syntax_error_is_named_with_the_parser_error(broken: Run):
    parse = _with(broken, "PARSE  infra/modules/staging-access.bicep:")
    assert len(parse) == 2, broken.output
    assert "unexpected" in parse[0]  # pycep-parser's message: position, token, what it expected
    # checkov's own count of the same file, which alone would not fail a checkov run.
    assert (
        parse[1]
        == "PARSE  infra/modules/staging-access.bicep: checkov (bicep) could not parse it and ran no check on it"
    )


def test_a_failed_check_fails(broken: Run):
    vault = [f for f in _with(broken, "FAILED CKV_AZURE_") if "Microsoft.KeyVault/vaults.vault" in f]
    # Purge protection, and "recoverable" (soft delete and purge protection).
    assert [f.split()[1] for f in vault] == ["CKV_AZURE_110", "CKV_AZURE_42"], broken.output
    assert all(f.split()[2].startswith("infra/main.bicep:") for f in vault)


def test_a_skip_without_a_reason_fails(broken: Run):
    bare = sorted(f for f in _with(broken, "SKIP   ") if "without a reason" in f)
    assert [f.split()[1] for f in bare] == sorted(BARE_SKIPS), broken.output
    for finding in bare:
        assert "infra/main.bicep:" in finding and "Microsoft.Web/sites.functionApp: skipped without a reason" in finding


def test_a_skip_that_skips_nothing_fails(broken: Run):
    assert len(_with(broken, "SKIP   CKV_AZURE_2250 infra/main.bicep:")) == 1, broken.output
    assert "skips nothing" in _with(broken, "SKIP   CKV_AZURE_2250")[0]
    assert len(_with(broken, "FAILED CKV_AZURE_225 infra/main.bicep:")) == 1  # what it meant to skip


def test_a_workflow_finding_is_named_as_in_the_repository(broken: Run):
    # Scanned through its copy under .github/workflows/, reported as pipelines/github-actions.yml.
    assert len(_with(broken, "FAILED CKV_GHA_1 pipelines/github-actions.yml:")) == 1, broken.output


def test_a_workflow_checkov_cannot_read_fails(tmp_path: Path):
    # A typo that breaks the GitHub Actions schema: checkov then skips the workflow without a word.
    root = _copy(tmp_path)
    _edit(
        root / "pipelines" / "github-actions.yml",
        "permissions:\n  contents: read\n",
        "permissions:\n  contents: reading\n",
    )
    run = _check(root)
    assert run.returncode == 1, run.output
    assert len(run.findings) == 1, run.output
    assert run.findings[0].startswith("EMPTY  pipelines/github-actions.yml: GitHub workflow scanned with 0 checks")
