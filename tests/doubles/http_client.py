"""A fake of the endpoint tester's HTTP client (platforms.common.endpoint_tests.HttpClient): no socket.

Each request is prepared by ``requests`` itself (so headers are validated and bodies encoded as
they would be on the wire), recorded in ``sent`` and answered by ``answer(request)``, which returns
a status and a JSON document (or raw bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[Sent], tuple[int, Any]]


class FakeHttp:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[Sent] = []

    def get(self, url: str, *, headers: Mapping[str, str], timeout: float) -> requests.Response:
        return self._send("GET", url, headers)

    def post(
        self, url: str, data: bytes | None = None, json: Any = None, *, headers: Mapping[str, str], timeout: float
    ) -> requests.Response:
        return self._send("POST", url, headers, data=data, json=json)

    def _send(self, method: str, url: str, headers: Mapping[str, str], **body: Any) -> requests.Response:
        prepared = requests.Request(method, url, headers=dict(headers), **body).prepare()  # raises like requests
        raw = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body or b""
        sent = Sent(method, url, {name: str(value) for name, value in prepared.headers.items()}, raw)
        self.sent.append(sent)
        status, document = self.answer(sent)
        return response(status, document, url)


def response(status: int, document: Any, url: str = "") -> requests.Response:
    """A ``requests.Response`` with ``status`` and ``document`` as its JSON body (bytes as they are)."""
    answer = requests.Response()
    answer.status_code = status
    answer._content = document if isinstance(document, bytes) else json.dumps(document).encode()
    answer.headers["Content-Type"] = "application/json"
    answer.encoding = "utf-8"
    answer.url = url
    return answer
