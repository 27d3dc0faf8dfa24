"""ProductionEvidence on this machine: what the production router recorded of each request it routed.

The router (production_router.py) numbers every scoring request and keeps, per deployment, the
answers' status, latency and predictions, and for mirrored requests the pairs of predictions
(``GET /router/evidence?after=SEQ``). A mark is the router's id and its last number; ``since``
reads everything after it. A router that restarted meanwhile has new numbers: the evidence is then
what it saw since its restart, and the note says so.
"""

from __future__ import annotations

from typing import Any

import requests

from functions.domain.refs import Evidence, Served

EVIDENCE_PATH = "/router/evidence"  # the production router's route
READ_TIMEOUT_S = 5.0
# Larger than any sequence number a router gives out: asks for nothing but where it stands.
NOTHING_AFTER = 10**17


class EvidenceError(RuntimeError):
    """The router could not be read (the caller looks again later)."""


class RouterEvidence:
    def __init__(self, production_url: str) -> None:
        self.production_url = production_url.rstrip("/")

    def mark(self) -> dict[str, Any]:
        document = self._read(NOTHING_AFTER)
        return {"router_id": document.get("router_id"), "seq": int(document.get("seq") or 0)}

    def since(self, mark: dict[str, Any], deployments: list[str]) -> Evidence:
        after = int(mark.get("seq") or 0)
        document = self._read(after)
        notes = []
        if mark.get("router_id") and document.get("router_id") != mark.get("router_id"):
            document = self._read(0)
            notes.append("the production router restarted during the step: evidence since its restart")
        elif int(document.get("oldest_seq") or 0) > after + 1:
            notes.append(f"the router no longer holds requests {after + 1}..{int(document['oldest_seq']) - 1}")
        if document.get("mirror_dropped"):
            notes.append(f"{document['mirror_dropped']} mirror copies dropped (too many in flight)")
        wanted = set(deployments)
        return Evidence(
            served=_served(document.get("served"), wanted),
            mirrored=_served(document.get("mirrored"), wanted),
            pairs={
                str(key): tuple((pair[0], pair[1]) for pair in pairs if isinstance(pair, list) and len(pair) == 2)
                for key, pairs in (document.get("pairs") or {}).items()
                if key in wanted and isinstance(pairs, list)
            },
            source=f"local production router {self.production_url} (requests {after + 1}..{document.get('seq')})",
            note="; ".join(notes),
        )

    def _read(self, after: int) -> dict[str, Any]:
        url = f"{self.production_url}{EVIDENCE_PATH}"
        try:
            response = requests.get(url, params={"after": str(after)}, timeout=READ_TIMEOUT_S)
            document = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise EvidenceError(f"could not read the production router's evidence at {url}: {exc}") from None
        if not isinstance(document, dict):
            raise EvidenceError(f"the production router answered {url} with {response.status_code}")
        return document


def _served(section: Any, wanted: set[str]) -> dict[str, Served]:
    if not isinstance(section, dict):
        return {}
    return {
        str(key): Served(
            requests=int(record.get("requests") or 0),
            errors=int(record.get("errors") or 0),
            latencies_ms=tuple(float(v) for v in record.get("latencies_ms") or []),
            predictions=tuple(record.get("predictions") or []),
        )
        for key, record in section.items()
        if key in wanted and isinstance(record, dict)
    }
