"""schemathesis against a real `mlops up`, from the spec the host serves at GET /api/openapi.json.

Every documented operation gets bounded, seeded examples (its examples, coverage and fuzzing phases,
valid and invalid data); each answer must be no 5xx, a documented status with its documented content
type, headers and schema, and every error (status >= 400) a JSON ``{"error": "..."}``, except where the
spec documents an HTML page (the approval page's refusals). The hooks get their secrets, so they
answer 401 (no fuzzer can sign) instead of 503 (not configured). docs/api.md describes the run.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from functions.entrypoints.identity import local_signature
from functions.entrypoints.ui import sessions
from tests.e2e.conftest import APPROVER, RunningHost, running_host

pytestmark = pytest.mark.e2e

HOOK_SECRETS = {
    "MLOPS_GITHUB_WEBHOOK_SECRET": "fuzz-github-secret",
    "MLOPS_HOOK_USER": "azure-devops",
    "MLOPS_HOOK_SECRET": "fuzz-ado-secret",
    "MLOPS_GENERIC_WEBHOOK_SECRET": "fuzz-generic-secret",
}
# The same cases on every run (a failure reproduces, CI time stays flat); MLOPS_FUZZ_SEED and
# MLOPS_FUZZ_EXAMPLES explore further by hand (docs/api.md).
SEED = int(os.environ.get("MLOPS_FUZZ_SEED", "20260101"))
MAX_EXAMPLES = int(os.environ.get("MLOPS_FUZZ_EXAMPLES", "50"))  # per operation, fuzzing phase (+ coverage's)
REQUEST_TIMEOUT_S = 30
CONFIG = {
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "database": "none", "deterministic": True},
    "phases": {"stateful": {"enabled": False}},
    # The local host does not check function keys (Core Tools does not either; docs/api.md), so a read
    # without one succeeds here as the spec says it would not on Azure.
    "checks": {"ignored_auth": {"enabled": False}},
}


@pytest.fixture(scope="module")
def fuzz_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    with running_host(tmp_path_factory.mktemp("mlops-fuzz-home"), HOOK_SECRETS) as client:
        yield client


@pytest.fixture(scope="module")
def api_schema(fuzz_host: RunningHost) -> Any:
    config = SchemathesisConfig.from_dict(CONFIG)
    return schemathesis.openapi.from_url(f"{fuzz_host.base_url}/api/openapi.json", config=config)


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32.5's lazy loader reads and renames pytest's private ``Node._nodeid``, which pytest 9
    no longer has; giving the node one keeps its per-operation reporting working (nothing else reads it)."""
    request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="module")
def reader_cookie(fuzz_host: RunningHost) -> str:
    """A session for APPROVER, as the page's one-time sign-in link would set it (the key in $MLOPS_HOME)."""
    key = local_signature.load_or_create_key(fuzz_host.home)
    return f"{sessions.COOKIE}={sessions.mint_session(key, APPROVER, int(time.time()))}"


schema = schemathesis.pytest.from_fixture("api_schema")


def documented_content(case: Any, status: int) -> set[str]:
    """The media types the spec documents for ``status`` on the case's operation."""
    responses = case.operation.schema.raw_schema["paths"][case.operation.path][case.operation.method.lower()]
    response = responses["responses"].get(str(status)) or responses["responses"].get(f"{str(status)[0]}XX") or {}
    return set(response.get("content", {}))


def errors_are_documented_bodies(ctx: Any, response: Any, case: Any) -> None:
    """Status >= 400: JSON {"error": "<text>"}, or HTML where the spec says this status is an HTML page."""
    if response.status_code < 400:
        return
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip().lower()
    if media_type == "text/html" and "text/html" in documented_content(case, response.status_code):
        return
    assert media_type == "application/json", f"{response.status_code} answered {media_type or 'no content type'}"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body


# "METHOD /path" -> how often each status was answered: what the run reached, for the test after it.
ANSWERED: defaultdict[str, Counter[int]] = defaultdict(Counter)

# A real host over HTTP is slow by Hypothesis' standards: no deadline, no health checks about speed or size.
FUZZ_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_answers_as_documented(case: Any) -> None:
    response = case.call_and_validate(timeout=REQUEST_TIMEOUT_S, additional_checks=[errors_are_documented_bodies])
    ANSWERED[case.operation.label][response.status_code] += 1


@schema.include(tag="ui").parametrize()
@FUZZ_SETTINGS
def test_the_approval_page_answers_a_signed_in_reader_as_documented(case: Any, reader_cookie: str) -> None:
    """The page's operations again, signed in: past the sign-in check, into filters, lookups and forms."""
    headers = {"Cookie": reader_cookie}  # an explicit Cookie header wins over the generated cookie
    response = case.call_and_validate(
        headers=headers, timeout=REQUEST_TIMEOUT_S, additional_checks=[errors_are_documented_bodies]
    )
    ANSWERED[f"reader {case.operation.label}"][response.status_code] += 1


def test_the_fuzz_reached_every_operation(api_schema: Any) -> None:
    """Runs after the fuzz (pytest keeps the file's order): no operation was skipped or filtered out."""
    if not ANSWERED:
        pytest.skip("counts what the fuzz tests above answered: run them with it")
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    anonymous = {label for label in ANSWERED if not label.startswith("reader ")}
    assert labels == anonymous, f"never answered: {sorted(labels - anonymous)}"
    assert ANSWERED["reader GET /ui"][200] > 0, "the signed-in reader never saw the list"


def test_the_spec_is_served_and_lists_every_route(fuzz_host: RunningHost) -> None:
    """The host's own route list (GET /) and the served spec agree: nothing the fuzz could have missed."""
    served = requests.get(f"{fuzz_host.base_url}/api/openapi.json", timeout=REQUEST_TIMEOUT_S)
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    spec = served.json()
    documented = {(f"/api{path}", method.upper()) for path, item in spec["paths"].items() for method in item}
    functions = requests.get(f"{fuzz_host.base_url}/", timeout=REQUEST_TIMEOUT_S).json()["functions"]
    routes = {(f["route"], method) for f in functions if "route" in f for method in f["methods"]}
    assert documented == routes


@pytest.mark.parametrize("path", ["/api/dead-letters", "/api/parked"])
def test_a_cursor_beyond_64_bits_is_the_first_page_not_a_500(fuzz_host: RunningHost, path: str) -> None:
    """What the fuzz found (seed SEED): a documented 20-digit cursor above SQLite's largest integer was a 500.
    A cursor past every position is the same as none: the newest page."""
    response = requests.get(f"{fuzz_host.base_url}{path}?before=21935732680693123468", timeout=REQUEST_TIMEOUT_S)
    first = requests.get(f"{fuzz_host.base_url}{path}", timeout=REQUEST_TIMEOUT_S)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.json() == first.json()
