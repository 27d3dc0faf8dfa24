"""Bad input over real HTTP to a real `mlops up` (uvicorn on 127.0.0.1), as a bounded attack sends it.

One bad event in a batch is dead-lettered alone and the rest are handled; bodies past Event Grid's limits
are refused before they are read; JSON nested 10,000 deep is a 400 on the webhook, the API and the admin
route; the CLI prints what it is given literally (issue: hardening, part 1).
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests import payloads as p
from tests.e2e.conftest import REQUESTER, post_webhook, wait_for_state
from tests.e2e.test_cli import mlops, triggered_release

pytestmark = pytest.mark.e2e

DEEP = b"[" * 10_000 + b"]" * 10_000


def build_event(build_id: str) -> dict:
    event = p.build_completed(build_id)
    event["data"]["requester"] = REQUESTER
    return event


def test_one_bad_event_is_dead_lettered_alone_and_the_rest_of_its_batch_is_handled(host):
    run = uuid.uuid4().hex[:8]
    good, surrogate, bad_time = build_event(f"ok-{run}"), build_event(f"s-{run}"), build_event(f"t-{run}")
    surrogate["id"] = f"bad-{run}\ud800"
    bad_time["eventTime"] = 1733270400
    body = json.dumps([surrogate, good, bad_time]).encode()  # \ud800 escaped, as JSON carries it

    answer = post_webhook(host, "on_build_event", body)

    assert answer.status_code == 202
    wait_for_state(host, f"rel-generic-ok-{run}", {"training", "registering", "packaging", "deploying_staging",
                                                  "awaiting_approval", "rejected"})  # fmt: skip
    letters = requests.get(f"{host.base_url}/api/dead-letters?limit=500", timeout=30).json()["dead_letters"]
    (letter,) = [letter for letter in letters if letter["event_id"] == f"bad-{run}\\ud800"]
    assert "not valid Unicode" in letter["reason"] and len(letter["sha256"]) == 64
    hosted = [json.loads(line) for line in (host.home / "undelivered.jsonl").read_text().splitlines()]
    assert [record["event_id"] for record in hosted if record["event_id"] == bad_time["id"]] == [bad_time["id"]]
    for missing in (f"rel-generic-s-{run}", f"rel-generic-t-{run}"):
        assert requests.get(f"{host.base_url}/api/releases/{missing}", timeout=30).status_code == 404
    shown = mlops(host, "dead-letters", "--limit", "500")
    assert shown.returncode == 0 and f"bad-{run}\\ud800" in shown.stdout


def test_a_ten_megabyte_body_is_413_with_or_without_a_content_length(host):
    body = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    assert post_webhook(host, "on_build_event", body).status_code == 413  # refused from its Content-Length

    def chunks():  # no Content-Length: the host counts as it reads, keeps nothing past the limit, answers 413
        for _ in range(10):
            yield b" " * (1024 * 1024)

    streamed = requests.post(
        f"{host.base_url}/runtime/webhooks/eventgrid?functionName=on_build_event",
        data=chunks(),
        headers={"aeg-event-type": "Notification", "Content-Type": "application/json"},
        timeout=60,
    )
    assert streamed.status_code == 413 and "1049600 bytes" in streamed.json()["error"]
    assert host.healthy()


@pytest.mark.parametrize(
    "path",
    [
        "/runtime/webhooks/eventgrid?functionName=on_build_event",
        "/api/releases/rel-x/approve",
        "/admin/functions/on_ml_event",
    ],
)
def test_json_ten_thousand_deep_is_a_400_with_an_error(host, path):
    headers = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
    answer = requests.post(f"{host.base_url}{path}", data=DEEP, headers=headers, timeout=60)
    assert answer.status_code == 400 and isinstance(answer.json()["error"], str)


def test_the_cli_shows_markup_in_a_release_as_typed(host):
    release_id = triggered_release(host, "--param", "note=[/bold][red]x", "--requester", REQUESTER)
    shown = mlops(host, "show", release_id)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "[/bold][red]x" in shown.stdout
    listed = mlops(host, "releases", "--limit", "5")
    assert listed.returncode == 0 and release_id in listed.stdout
