"""JSON answers for the Functions host: every body is JSON, every error {"error": "..."}."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(document, default=str), status_code=status, mimetype="application/json", headers=headers
    )


def error(status: int, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return json_response({"error": message}, status, headers)
