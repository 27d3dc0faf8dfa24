"""What a fake of `requests.request` answers the CLI's HostClient: a status and a JSON document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class FakeResponse:
    status_code: int
    payload: Any

    @property
    def content(self) -> bytes:
        return json.dumps(self.payload).encode()

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return self.payload
