"""A fake azure.monitor.query LogsQueryClient: records each query, answers with the SDK's own result types.

Only what platforms/azure/evidence.py calls: ``query_resource(resource_id, query, timespan=...,
server_timeout=...)``. The test queues what the Logs API answers, in its wire shape
(``{"tables": [{"name", "columns": [{"name", "type"}], "rows"}], "error": {...}}``), and the fake
turns it into a result exactly as azure-monitor-query 2.0 does (``LogsQueryClient.query_resource``):
no "error" in the body -> ``LogsQueryResult._from_generated``; an "error" beside the tables (a partial
success) -> ``LogsQueryPartialResult._from_generated(body, LogsQueryError)``; an HTTP error -> the
``HttpResponseError`` the SDK raises. So the adapter reads real LogsTable / LogsTableRow objects (rows
by column name, datetime columns parsed, dynamic columns as the JSON text the service sends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsQueryError, LogsQueryPartialResult, LogsQueryResult

PRIMARY = "PrimaryResult"  # the name the Logs API gives a query's (first) table
PARTIAL_ERROR = {  # what the Logs API sends beside the tables of a partial success
    "code": "PartialError",
    "message": "There were some errors when processing your query.",
    "details": [{"code": "EngineError", "message": "Something went wrong processing your query on the server."}],
    "innererror": {"code": "E_QUERY_RESULT_SET_TOO_LARGE", "message": "Query result set has exceeded the limit"},
}


@dataclass(frozen=True)
class Query:
    resource_id: str
    query: str
    timespan: Any
    server_timeout: int | None


def table(columns: list[tuple[str, str]], rows: list[list[Any]], name: str = PRIMARY) -> dict[str, Any]:
    """One table as the Logs API sends it: ``columns`` (name, type), rows of plain JSON values."""
    return {"name": name, "columns": [{"name": n, "type": t} for n, t in columns], "rows": rows}


class FakeLogsQueryClient:
    def __init__(self) -> None:
        self.queries: list[Query] = []
        self._answers: list[dict[str, Any] | Exception] = []

    # ---- what tests drive ------------------------------------------------------------------
    def answer(self, *tables: dict[str, Any], error: dict[str, Any] | None = None) -> None:
        """Queue the next answer: these tables, and with ``error`` a partial success."""
        body: dict[str, Any] = {"tables": list(tables)}
        if error is not None:
            body["error"] = error
        self._answers.append(body)

    def fail(self, status: int = 403, code: str = "AuthorizationFailed", message: str = "") -> None:
        """Queue an HTTP error, as the service answers a query it refuses."""
        said = message or f"The client does not have authorization to perform the query ({status})"
        self._answers.append(HttpResponseError(message=f"({code}) {said}"))

    # ---- the LogsQueryClient surface the adapter uses ----------------------------------------
    def query_resource(
        self, resource_id: str, query: str, *, timespan: Any, server_timeout: int | None = None, **kwargs: Any
    ) -> LogsQueryResult | LogsQueryPartialResult:
        self.queries.append(Query(resource_id, query, timespan, server_timeout))
        if not self._answers:
            raise AssertionError("the fake Logs API was queried but no answer was queued")
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if not answer.get("error"):
            return LogsQueryResult._from_generated(answer)
        return LogsQueryPartialResult._from_generated(answer, LogsQueryError)
