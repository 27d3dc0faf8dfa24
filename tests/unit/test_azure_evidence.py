"""AppInsightsEvidence against a fake LogsQueryClient answering with azure-monitor-query's own result types,
and AksProduction over the fake MLClient for the names: the one KQL query it sends, and the Evidence it
builds from the rows the Logs API returns (partial results noted, failures raised)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from functions.domain.refs import Evidence, ImageRef, ModelRef, Served
from functions.ports import ProductionEvidence
from platforms.azure.evidence import (
    LATENCY_SAMPLE,
    PREDICTION_SAMPLE,
    SERVER_TIMEOUT_S,
    AppInsightsEvidence,
    EvidenceError,
    build_query,
)
from platforms.azure.production import AksProduction, deployment_name
from platforms.azure.settings import AzureSettings, example_env
from tests.doubles.azure_endpoints import FakeMLClient
from tests.doubles.azure_monitor import PARTIAL_ERROR, FakeLogsQueryClient, table

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

SETTINGS = AzureSettings.from_env(example_env())
COMPONENT = SETTINGS.app_insights_id
MARKED = datetime(2026, 7, 1, 10, 0, 0, 250000, tzinfo=UTC)
D1, D2 = deployment_name("rel-1"), deployment_name("rel-2")
# The columns the query's summarize returns, with the types the Logs API gives them.
COLUMNS = [
    ("deployment", "string"),
    ("requests", "long"),
    ("errors", "long"),
    ("latencies_ms", "dynamic"),
    ("predictions", "dynamic"),
    ("unread", "long"),
]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def row(name: str, requests: int, errors: int, latencies: list[float], answers: list[list], unread: int = 0) -> list:
    """One summarised row as the service sends it: dynamic columns as JSON text."""
    return [name, requests, errors, json.dumps(latencies), json.dumps(answers), unread]


@pytest.fixture
def ml() -> FakeMLClient:
    return FakeMLClient()


@pytest.fixture
def production(ml: FakeMLClient) -> AksProduction:
    """Production with rel-1 serving and rel-2 beside it, both made by AksProduction (so both log)."""
    production = AksProduction(SETTINGS, ml)
    for n in (1, 2):
        key = f"rel-{n}"
        image = ImageRef("diabetes-scoring", f"{n}-{key}", f"sha256:{n:064x}", "crmlops.azurecr.io")
        model = ModelRef("diabetes-model", str(n), f"azureml:diabetes-model:{n}")
        operation = production.begin_beside(key, image, model)
        while not production.follow(operation).finished:
            pass
    production.follow(production.begin_traffic({"rel-1": 90, "rel-2": 10}))
    return production


@pytest.fixture
def logs() -> FakeLogsQueryClient:
    return FakeLogsQueryClient()


@pytest.fixture
def clock() -> Clock:
    return Clock(MARKED)


@pytest.fixture
def evidence(logs: FakeLogsQueryClient, production: AksProduction, clock: Clock) -> AppInsightsEvidence:
    return AppInsightsEvidence(COMPONENT, logs, production, clock=clock)


def test_it_is_the_port(evidence: AppInsightsEvidence) -> None:
    port: ProductionEvidence = evidence
    assert port.mark() == {"at": "2026-07-01T10:00:00.250000+00:00"}


def test_a_mark_is_the_time_now_in_utc_as_json(logs: FakeLogsQueryClient, production: AksProduction) -> None:
    elsewhere = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    mark = AppInsightsEvidence(COMPONENT, logs, production, clock=lambda: elsewhere).mark()
    assert json.loads(json.dumps(mark)) == mark == {"at": "2026-07-01T10:00:00+00:00"}
    assert logs.queries == []  # marking reads nothing


def test_since_sends_one_query_on_the_component_for_the_keys_deployments_since_the_mark(
    evidence: AppInsightsEvidence, logs: FakeLogsQueryClient, clock: Clock
) -> None:
    mark = evidence.mark()
    clock.now = MARKED + timedelta(minutes=5)
    logs.answer(table(COLUMNS, []))

    evidence.since(mark, ["rel-2", "rel-1"])

    assert len(logs.queries) == 1
    sent = logs.queries[0]
    assert sent.resource_id == COMPONENT
    assert sent.timespan == (MARKED, MARKED + timedelta(minutes=5))
    assert sent.server_timeout == SERVER_TIMEOUT_S
    kql = sent.query
    assert kql.startswith("let since = datetime(2026-07-01T10:00:00.250000Z);")
    assert f"let deployments = dynamic({json.dumps(sorted([D1, D2]))});" in kql
    assert "\nAppRequests\n| where TimeGenerated > since\n" in kql
    assert '| extend deployment = tolower(tostring(Properties["Service Name"]))' in kql
    assert '| where deployment in (deployments) and Name endswith "/score"' in kql
    # the status and the duration azmlinfsrv records as properties, the columns as fallback
    assert 'toint(coalesce(tostring(Properties["resultCode"]), ResultCode))' in kql
    assert 'coalesce(totimespan(tostring(Properties["duration"])) / 1ms, DurationMs)' in kql
    assert "errors = sumif(ItemCount, code >= 500)" in kql and "requests = sum(ItemCount)" in kql
    # bounded samples: the newest requests' latencies, the newest answers' predictions
    assert "| order by deployment asc, TimeGenerated desc" in kql
    assert f"make_list_if(ms, isnotnull(ms) and newest <= {LATENCY_SAMPLE}, {LATENCY_SAMPLE})" in kql
    assert f"make_list_if(rows, n > 0 and rows_before < {PREDICTION_SAMPLE}, {PREDICTION_SAMPLE})" in kql
    assert 'parse_json(tostring(Properties["Response Value"]))' in kql
    assert "by deployment\n| project deployment, requests, errors, latencies_ms, predictions, unread" in kql


def test_the_evidence_is_keyed_by_our_keys_from_the_rows(
    evidence: AppInsightsEvidence, logs: FakeLogsQueryClient
) -> None:
    mark = evidence.mark()
    logs.answer(
        table(
            COLUMNS,
            [
                row(D1, 90, 1, [12.5, 14.0, 11.0], [[150.5, 80.25], [99.0]]),
                row(D2, 10, 0, [13.0], [[151.0]]),
                row("someone-elses-deployment", 5, 5, [1.0], []),
            ],
        )
    )

    found = evidence.since(mark, ["rel-1", "rel-2"])

    assert found == Evidence(
        served={
            "rel-1": Served(requests=90, errors=1, latencies_ms=(12.5, 14.0, 11.0), predictions=(150.5, 80.25, 99.0)),
            "rel-2": Served(requests=10, errors=0, latencies_ms=(13.0,), predictions=(151.0,)),
        },
        source=f"Application Insights mlwmlopsinsights1a2b3c4d (AppRequests after {MARKED.isoformat()})",
        note="latencies of rel-1: the newest 3 of 90 requests; latencies of rel-2: the newest 1 of 10 requests",
    )
    assert found.mirrored == {} and found.pairs == {}  # no mirrored traffic on a Kubernetes endpoint


def test_labels_stay_labels_and_what_is_not_a_prediction_is_left_out(
    evidence: AppInsightsEvidence, logs: FakeLogsQueryClient
) -> None:
    logs.answer(table(COLUMNS, [row(D2, 3, 0, [1.0, 2.0, 3.0], [["yes", "no"], [[1, 2]], [True, 3]], unread=1)]))

    served = evidence.since(evidence.mark(), ["rel-2"])

    assert served.served["rel-2"].predictions == ("yes", "no", 3.0)
    assert served.note == (
        "1 answers of rel-2 carried no readable prediction (the response is not logged, or was cut at 8,192 characters)"
    )


def test_the_prediction_sample_is_bounded(evidence: AppInsightsEvidence, logs: FakeLogsQueryClient) -> None:
    # the query keeps answers until PREDICTION_SAMPLE rows are reached: the last one may go past it
    answers = [[1.0] * 1500, [2.0] * 1500]
    logs.answer(table(COLUMNS, [row(D2, 2, 0, [1.0, 2.0], answers)]))
    predictions = evidence.since(evidence.mark(), ["rel-2"]).served["rel-2"].predictions
    assert len(predictions) == PREDICTION_SAMPLE and predictions[-1] == 2.0


def test_no_rows_is_no_evidence_yet(evidence: AppInsightsEvidence, logs: FakeLogsQueryClient) -> None:
    logs.answer(table(COLUMNS, []))
    found = evidence.since(evidence.mark(), ["rel-1", "rel-2"])
    assert found.served == {} and found.note == ""


def test_a_partial_result_is_used_and_noted(evidence: AppInsightsEvidence, logs: FakeLogsQueryClient) -> None:
    logs.answer(table(COLUMNS, [row(D2, 4, 2, [9.0, 9.5, 8.0, 7.0], [[1.0]])]), error=PARTIAL_ERROR)

    found = evidence.since(evidence.mark(), ["rel-1", "rel-2"])

    assert found.served == {"rel-2": Served(4, 2, (9.0, 9.5, 8.0, 7.0), (1.0,))}
    assert found.note == (
        "Application Insights answered in part (PartialError: Query result set has exceeded the limit): "
        "the evidence is what it returned"
    )


def test_a_partial_result_without_tables(evidence: AppInsightsEvidence, logs: FakeLogsQueryClient) -> None:
    logs.answer(error=PARTIAL_ERROR)
    found = evidence.since(evidence.mark(), ["rel-2"])
    assert found.served == {} and "answered in part" in found.note


def test_a_failed_query_raises_so_the_caller_looks_again_later(
    evidence: AppInsightsEvidence, logs: FakeLogsQueryClient
) -> None:
    logs.fail(403, "InsufficientAccessError")
    with pytest.raises(EvidenceError, match=r"could not query Application Insights mlwmlopsinsights1a2b3c4d: .*"):
        evidence.since(evidence.mark(), ["rel-1"])


def test_a_mark_that_is_not_ours_is_refused(evidence: AppInsightsEvidence, logs: FakeLogsQueryClient) -> None:
    for mark in ({}, {"at": "yesterday"}, {"router_id": "x", "seq": 3}):
        with pytest.raises(EvidenceError, match="not a mark of this adapter"):
            evidence.since(mark, ["rel-1"])
    assert logs.queries == []


def test_a_deployment_that_does_not_log_is_named_in_the_note(
    evidence: AppInsightsEvidence, logs: FakeLogsQueryClient, ml: FakeMLClient
) -> None:
    # rel-1's deployment as one made before app_insights_enabled (or by hand in the portal)
    made_before = ml.endpoints[SETTINGS.endpoint].deployments[D1]
    made_before.app_insights_enabled = False
    logs.answer(table(COLUMNS, []))

    found = evidence.since(evidence.mark(), ["rel-1", "rel-2"])

    assert found.note == f"rel-1 (deployment {D1}) does not log its requests to Application Insights: no evidence of it"


def test_keys_map_to_deployment_names_as_production_resolves_them(
    logs: FakeLogsQueryClient, production: AksProduction, ml: FakeMLClient, clock: Clock
) -> None:
    # A deployment made by hand for a key, found through the endpoint's history tags (production._name_of).
    from azure.ai.ml.entities import KubernetesOnlineDeployment

    ml.add_deployment(
        SETTINGS.endpoint,
        KubernetesOnlineDeployment(
            name="blue", endpoint_name=SETTINGS.endpoint, app_insights_enabled=True,
            environment_variables={"SERVICE_NAME": "blue"},
        ),
    )  # fmt: skip
    ml.endpoints[SETTINGS.endpoint].tags |= {"previous_deployment": "blue", "previous_release": "rel-0"}
    evidence = AppInsightsEvidence(COMPONENT, logs, production, clock=clock)
    logs.answer(table(COLUMNS, [row("blue", 2, 0, [5.0, 6.0], [])]))

    found = evidence.since(evidence.mark(), ["rel-0", "rel-9"])

    assert f"dynamic({json.dumps(sorted(['blue', deployment_name('rel-9')]))})" in logs.queries[0].query
    assert found.served == {"rel-0": Served(2, 0, (5.0, 6.0), ())}
    assert found.note == (
        f"rel-9 (deployment {deployment_name('rel-9')}) does not log its requests to Application Insights: "
        "no evidence of it"
    )


def test_without_an_endpoint_the_names_are_those_the_keys_would_have(logs: FakeLogsQueryClient, clock: Clock) -> None:
    evidence = AppInsightsEvidence(COMPONENT, logs, AksProduction(SETTINGS, FakeMLClient()), clock=clock)
    logs.answer(table(COLUMNS, []))
    evidence.since(evidence.mark(), ["rel-1"])
    assert f'dynamic(["{D1}"])' in logs.queries[0].query


def test_the_query_refuses_names_that_are_not_deployment_names() -> None:
    with pytest.raises(EvidenceError, match="not a deployment name"):
        build_query(MARKED, ['x"]); AppRequests | take 1 //'])


def test_from_settings_builds_a_real_logs_query_client() -> None:
    from azure.monitor.query import LogsQueryClient

    from tests.doubles.azure_mgmt import StaticCredential

    built = AppInsightsEvidence.from_settings(SETTINGS, StaticCredential(), AksProduction(SETTINGS, FakeMLClient()))
    assert isinstance(built.logs_client, LogsQueryClient) and built.app_insights_id == COMPONENT
