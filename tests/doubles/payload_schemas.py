"""The JSON Schemas each notification format is checked against: Teams' and Slack's (written from their
public docs, under tests/fixtures/schemas) and our own JSON format's public contract (docs/schemas)."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {
    "teams": ROOT / "tests/fixtures/schemas/teams_workflow_message.schema.json",
    "slack": ROOT / "tests/fixtures/schemas/slack_incoming_webhook.schema.json",
    "json": ROOT / "docs/schemas/notification.schema.json",
}


def validator(format_name: str) -> Draft202012Validator:
    """A validator of ``format_name``'s payloads (the schema itself checked first), formats included."""
    schema = json.loads(SCHEMAS[format_name].read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
