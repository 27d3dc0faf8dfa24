"""ProductionEvidence on Azure: what the AKS deployments served, read from Application Insights.

Every production deployment is created with ``app_insights_enabled`` and ``SERVICE_NAME`` set to its
own name (production.py), so the inference server in the scoring image (azmlinfsrv 1.5,
scoring/requirements.txt) logs each scoring request to the workspace's Application Insights as a
request telemetry item (table ``AppRequests`` of a workspace-based resource) whose ``Properties`` (its
customDimensions) carry:

- ``Service Name``: the deployment, as set by SERVICE_NAME;
- ``resultCode``: the HTTP status (the ``ResultCode`` column is "0": azmlinfsrv records the status as an
  attribute, not the OpenTelemetry one the exporter maps);
- ``duration``: the time the server took, "HH:MM:SS.mmm" (``DurationMs`` is about 0: the span is made
  after the answer, microsoft/azureml-inference-server#111);
- ``Response Value``: the response body, ``{"result": [...]}`` for an answer (the exporter cuts a
  property at 8,192 characters: a longer body is not valid JSON any more, and its predictions are lost).

Where a property is missing (a server that fills the columns instead), the column is read. ``since`` runs one
resource-centric query on that Application Insights resource (AZUREML_APP_INSIGHTS_ID), summarising per
deployment: requests, errors (5xx), the latencies of the newest LATENCY_SAMPLE requests and the
predictions of the newest answers, up to PREDICTION_SAMPLE rows. What it cannot see: requests the
inference router answered itself (a deployment down, a timeout, a full queue never reach azmlinfsrv),
mirrored traffic (a Kubernetes endpoint has none: ``mirrored`` and ``pairs`` stay empty), and requests
not ingested yet (Application Insights lags a few minutes: a later read sees them). A deployment that
does not log (made before this, or by hand) is named in the note. A failed query raises EvidenceError:
the caller looks again later.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from functions.domain.refs import Evidence, Served

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from platforms.azure.settings import AzureSettings

logger = logging.getLogger("mlops.evidence")

TABLE = "AppRequests"
SCORING_PATH = "/score"
LATENCY_SAMPLE = 2000  # latencies kept per deployment: of its newest requests
PREDICTION_SAMPLE = 2000  # predictions (rows) kept per deployment: of its newest answers
SERVER_TIMEOUT_S = 30  # the Logs API's own limit for the query ("one quick read")
# The columns the query's summarize gives, in order.
COLUMNS = ("deployment", "requests", "errors", "latencies_ms", "predictions", "unread")
_SAFE_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")


class EvidenceError(RuntimeError):
    """Application Insights could not be read (the caller looks again later)."""


class Deployments(Protocol):
    """How keys name deployments: AksProduction.telemetry_names."""

    def telemetry_names(self, keys: Iterable[str]) -> dict[str, tuple[str, bool]]: ...


class AppInsightsEvidence:
    def __init__(
        self,
        app_insights_id: str,
        logs_client: Any,
        deployments: Deployments,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``logs_client``: an azure.monitor.query LogsQueryClient (or a fake with its ``query_resource``)."""
        self.app_insights_id = app_insights_id
        self.logs_client = logs_client
        self.deployments = deployments
        self.clock = clock

    @classmethod
    def from_settings(
        cls, settings: AzureSettings, credential: TokenCredential, deployments: Deployments
    ) -> AppInsightsEvidence:
        from azure.monitor.query import LogsQueryClient

        return cls(settings.app_insights_id, LogsQueryClient(credential), deployments)

    # ---- the ProductionEvidence port ---------------------------------------------------------
    def mark(self) -> dict[str, Any]:
        return {"at": self._now().isoformat()}

    def since(self, mark: dict[str, Any], deployments: list[str]) -> Evidence:
        from azure.core.exceptions import AzureError
        from azure.monitor.query import LogsQueryStatus

        start = _mark_time(mark)
        end = max(self._now(), start)
        try:
            named = self.deployments.telemetry_names(deployments)
        except AzureError as exc:
            raise EvidenceError(f"could not read the production deployments' names: {exc}") from exc
        keys = {name.lower(): key for key, (name, _) in named.items()}
        query = build_query(start, list(keys))
        try:
            result = self.logs_client.query_resource(
                self.app_insights_id, query, timespan=(start, end), server_timeout=SERVER_TIMEOUT_S
            )
        except AzureError as exc:
            raise EvidenceError(f"could not query Application Insights {self._component}: {exc}") from exc
        notes = [
            f"{key} (deployment {name}) does not log its requests to Application Insights: no evidence of it"
            for key, (name, logs) in named.items()
            if not logs
        ]
        if result.status == LogsQueryStatus.PARTIAL:
            tables = list(result.partial_data or [])
            error = result.partial_error
            notes.append(
                "Application Insights answered in part"
                + (f" ({error.code}: {error.message})" if error is not None else "")
                + ": the evidence is what it returned"
            )
        elif result.status == LogsQueryStatus.SUCCESS:
            tables = list(result.tables)
        else:
            raise EvidenceError(f"Application Insights {self._component} answered {result.status}")
        served: dict[str, Served] = {}
        for row in tables[0].rows if tables else []:
            key = keys.get(str(row["deployment"]).lower())
            if key is None:
                continue
            served[key], said = _served(key, row)
            notes.extend(said)
        return Evidence(
            served=served,
            source=f"Application Insights {self._component} ({TABLE} after {start.isoformat()})",
            note="; ".join(notes),
        )

    # ---- helpers ---------------------------------------------------------------------------
    @property
    def _component(self) -> str:
        return self.app_insights_id.rstrip("/").rsplit("/", 1)[-1]

    def _now(self) -> datetime:
        now = self.clock()
        return (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)


def build_query(start: datetime, deployments: list[str]) -> str:
    """The one KQL query of ``since``: per deployment (by its "Service Name"), the scoring requests after
    ``start``: how many (ItemCount: the sampled ones count for what they stand for), the 5xx among them,
    the latencies of the newest LATENCY_SAMPLE, the predictions of the newest answers (arrays of rows, up
    to PREDICTION_SAMPLE rows), and how many answers had no readable prediction."""
    unsafe = [name for name in deployments if not _SAFE_NAME.fullmatch(name)]
    if unsafe:  # Azure ML's names are letters, digits and '-': anything else is not one of ours
        raise EvidenceError(f"not a deployment name: {unsafe}")
    since = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"""let since = datetime({since});
let deployments = dynamic({json.dumps(sorted({name.lower() for name in deployments}))});
{TABLE}
| where TimeGenerated > since
| extend deployment = tolower(tostring(Properties["Service Name"]))
| where deployment in (deployments) and Name endswith "{SCORING_PATH}"
| extend code = toint(coalesce(tostring(Properties["resultCode"]), ResultCode))
| extend ms = coalesce(totimespan(tostring(Properties["duration"])) / 1ms, DurationMs)
| extend answer = parse_json(tostring(Properties["Response Value"]))
| extend rows = iff(code between (200 .. 399), array_slice(answer.result, 0, {PREDICTION_SAMPLE - 1}), dynamic(null))
| extend n = coalesce(array_length(rows), 0)
| order by deployment asc, TimeGenerated desc
| extend newest = row_number(1, prev(deployment) != deployment)
| extend rows_before = row_cumsum(n, prev(deployment) != deployment) - n
| summarize requests = sum(ItemCount), errors = sumif(ItemCount, code >= 500),
    latencies_ms = make_list_if(ms, isnotnull(ms) and newest <= {LATENCY_SAMPLE}, {LATENCY_SAMPLE}),
    predictions = make_list_if(rows, n > 0 and rows_before < {PREDICTION_SAMPLE}, {PREDICTION_SAMPLE}),
    unread = countif(code between (200 .. 399) and n == 0)
    by deployment
| project {", ".join(COLUMNS)}"""


def _mark_time(mark: dict[str, Any]) -> datetime:
    try:
        moment = datetime.fromisoformat(str(mark["at"]))
    except (KeyError, TypeError, ValueError):
        raise EvidenceError(f"not a mark of this adapter (no ISO time 'at'): {mark}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _served(key: str, row: Any) -> tuple[Served, list[str]]:
    """One summarised row as Served, and what it says was left out."""
    requests, unread = int(row["requests"] or 0), int(row["unread"] or 0)
    latencies = tuple(float(value) for value in _dynamic(row["latencies_ms"]) if value is not None)
    predictions: list[float | str] = []
    for answer in _dynamic(row["predictions"]):
        for value in answer if isinstance(answer, list) else []:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                continue  # a row that is not one number or label (a nested answer): not a prediction
            predictions.append(value if isinstance(value, str) else float(value))
    notes = []
    if requests > len(latencies):
        notes.append(f"latencies of {key}: the newest {len(latencies)} of {requests} requests")
    if unread:
        notes.append(
            f"{unread} answers of {key} carried no readable prediction (the response is not logged, "
            "or was cut at 8,192 characters)"
        )
    served = Served(
        requests=requests,
        errors=int(row["errors"] or 0),
        latencies_ms=latencies,
        predictions=tuple(predictions[:PREDICTION_SAMPLE]),
    )
    return served, notes


def _dynamic(value: Any) -> list[Any]:
    """A dynamic column: the Logs API sends it as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []
