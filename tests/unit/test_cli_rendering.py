"""`mlops` prints what the host sends as it is, and never cuts an id, on an 80-column console.

The commands print through a recording rich Console of width 80 (markup and emoji on, as rich defaults, so
only the commands' own care keeps host text literal); HTTP is a recording fake of ``requests.request``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from rich.console import Console

from devhost import commands_releases
from devhost.cli import main
from devhost.client import HostClient
from devhost.commands_releases import next_page_command, rollout_table
from devhost.console import Listing, literal
from functions.domain.input_limits import DEAD_LETTER_EXCERPT_CHARS
from tests.doubles.host_response import FakeResponse

HOST = "http://127.0.0.1:7198"
LONG_ID = "rel-jenkins-train-pipeline-20261204-1234567"
DATA_ID = "rel-data-20261204t015300-abcdef"
EVENT_ID = "6f1c2d9e-4b7a-4e0b-9a51-3c2f1e8d7a60"
MARKUP = ("[/bold]", "[red]x[/red]", "[link=http://x]")


@dataclass
class Host:
    """Answers every request with ``answer``; the URLs asked, in order."""

    answer: FakeResponse = field(default_factory=lambda: FakeResponse(200, {}))
    urls: list[str] = field(default_factory=list)

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        self.urls.append(url)
        return self.answer

    def answers(self, payload: Any, status: int = 200) -> None:
        self.answer = FakeResponse(status, payload)

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.urls[-1]).query)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOPS_HOST_URL", HOST)
    fake = Host()
    monkeypatch.setattr(requests, "request", fake.request)
    return fake


@pytest.fixture
def screen(monkeypatch: pytest.MonkeyPatch) -> Console:
    recording = Console(width=80, file=io.StringIO(), record=True)
    monkeypatch.setattr(commands_releases, "console", recording)
    return recording


def printed(screen: Console) -> str:
    return screen.export_text()


def on_one_line(text: str, output: str) -> bool:
    return any(text in line for line in output.splitlines())


def release(release_id: str = LONG_ID, **fields: Any) -> dict[str, Any]:
    trigger = {"kind": "build", "buildNumber": "7", "parameters": {"note": "[red]x[/red]"}}
    return {"id": release_id, "state": "awaiting_approval", "trigger": trigger, "updated_at": "2026-12-04T01:53:00Z",
            "gate": None, "error": None, "timeline": [], **fields}  # fmt: skip


# --- user text is printed literally -----------------------------------------------------------------------


def test_show_prints_markup_in_host_text_as_typed(host: Host, screen: Console) -> None:
    timeline = [
        {"at": "2026-12-04T01:53:00Z", "step": "approved", "detail": "[/bold]"},
        {"at": "2026-12-04T01:54:00Z", "step": "noted", "detail": "[red]x[/red]"},
        {"at": "2026-12-04T01:55:00Z", "step": "noted", "detail": "[link=http://x] :fire:"},
    ]
    gate = {"reason": "mse [/bold] worse", "promote": False}
    host.answers(release(gate=gate, error="boom [/] [red]x[/red]", timeline=timeline))

    assert main(["show", LONG_ID]) == 0

    out = printed(screen)
    assert "gate: mse [/bold] worse" in out and "error: boom [/] [red]x[/red]" in out
    assert '{"note": "[red]x[/red]"}' in out  # the trigger's parameters
    for text in (*MARKUP, ":fire:"):
        assert text in out
    assert on_one_line(LONG_ID, out)


def test_a_state_keeps_its_colour_and_host_text_gets_none(host: Host, screen: Console) -> None:
    host.answers(release(state="failed", error="[green]fine[/green]"))
    assert main(["show", LONG_ID]) == 0
    styled = {segment.text: segment.style for segment in screen._record_buffer if segment.text.strip()}
    assert styled["failed"] is not None and styled["failed"].color is not None
    assert styled["failed"].color.name == "red"
    assert "[green]fine[/green]" in printed(screen)


def test_control_characters_from_the_host_are_shown_not_obeyed(host: Host, screen: Console) -> None:
    host.answers(release(error="\x1b[2J\x1b[31mred"))
    assert main(["show", LONG_ID]) == 0
    assert "\x1b" not in screen.file.getvalue()  # type: ignore[attr-defined]
    assert "\\x1b[2J\\x1b[31mred" in printed(screen)


def test_releases_prints_markup_in_a_trigger_literally(host: Host, screen: Console) -> None:
    host.answers({"releases": [release(trigger={"kind": "[/bold]"})]})
    assert main(["releases"]) == 0
    assert "[/bold]" in printed(screen)


def test_following_a_promotion_prints_its_steps_literally(
    host: Host, screen: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    def follow(client: HostClient, release_id: str, on_entry: Any, timeout_s: float) -> dict[str, Any]:
        on_entry({"at": "2026-12-04T01:53:07Z", "step": "canary [/bold]", "detail": "[red]x[/red] served"})
        return release(release_id, state="rolled_back", error="[link=http://x] errors")

    monkeypatch.setattr(HostClient, "follow", follow)
    args = commands_releases.argparse.Namespace(no_wait=False, timeout=1.0)

    assert commands_releases._followed(release(state="promoting"), args) == 1

    out = printed(screen)
    assert "01:53:07 canary [/bold]: [red]x[/red] served" in out
    assert on_one_line(f"{LONG_ID}: rolled_back ([link=http://x] errors)", out)


def test_a_rollout_against_a_stable_with_markup_in_its_name() -> None:
    screen = Console(width=80, file=io.StringIO(), record=True)
    steps = [{"kind": "canary", "share": 10, "window_s": 60.0, "min_requests": 40, "state": "failed",
              "reason": "[/bold] none"}]  # fmt: skip
    screen.print(rollout_table({"stable": "[red]old[/red]", "steps": steps}))
    out = printed(screen)
    assert "Rollout against [red]old[/red]" in out and "[/bold] none" in out


# --- no id is cut -----------------------------------------------------------------------------------------


def test_releases_keeps_every_id_whole_on_80_columns(host: Host, screen: Console) -> None:
    host.answers({"releases": [release(LONG_ID), release(DATA_ID, state="live")]})
    assert main(["releases"]) == 0
    out = printed(screen)
    assert on_one_line(LONG_ID, out) and on_one_line(DATA_ID, out)
    assert "…" not in out


def test_an_id_column_stays_whole_while_the_other_columns_wrap() -> None:
    screen = Console(width=80, file=io.StringIO(), record=True)
    listing = Listing("Timeline", ("id", "detail"), ids={"id"})
    listing.add_row(LONG_ID, "a long detail that has to wrap around several times in what is left " * 2)
    listing.add_row(DATA_ID, "short")
    listing.print(screen)
    out = printed(screen)
    assert "┃ id" in out  # a table, not the listing of records
    assert on_one_line(LONG_ID, out) and on_one_line(DATA_ID, out)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_ids_too_wide_for_a_table_are_listed_row_by_row_whole() -> None:
    screen = Console(width=80, file=io.StringIO(), record=True)
    listing = Listing("Parked events", ("release", "event id", "type"), ids={"release", "event id"})
    listing.add_row(LONG_ID, EVENT_ID, "MLOps.BuildCompleted")
    listing.print(screen)
    out = printed(screen)
    assert f"release: {LONG_ID}" in out.splitlines() and f"event id: {EVENT_ID}" in out.splitlines()
    assert "type: MLOps.BuildCompleted" in out.splitlines()


def test_the_timeline_keeps_invocations_whole(host: Host, screen: Console) -> None:
    entry = {"at": "2026-12-04T01:53:00Z", "step": "operation_started", "detail": "deploy: started " * 4,
             "invocation": "follow_operations:0123456789ab"}  # fmt: skip
    host.answers(release(DATA_ID, timeline=[entry]))
    assert main(["show", DATA_ID]) == 0
    assert on_one_line("follow_operations:0123456789ab", printed(screen))


# --- dead letters, a page at a time -----------------------------------------------------------------------


def letter(event_id: str = EVENT_ID, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": "MLOps.BuildCompleted", "function": "on_build_event",
            "reason": "no buildId [/bold]", "received_at": "2026-12-04T01:53:00+00:00", "size": 4096,
            "sha256": "ab" * 32, "excerpt": '{"id": "[red]x[/red]"', "truncated": True, **fields}  # fmt: skip


def test_dead_letters_asks_for_a_page_and_says_how_to_get_the_next(host: Host, screen: Console) -> None:
    host.answers({"dead_letters": [letter()], "next": "c2Vlbi0yMDI2"})

    assert main(["dead-letters"]) == 0

    assert host.urls == [f"{HOST}/api/dead-letters?limit=50"]
    out = printed(screen)
    assert on_one_line(EVENT_ID, out) and "no buildId [/bold]" in out and "4.0 KiB" in out
    assert on_one_line("next page: mlops dead-letters --before c2Vlbi0yMDI2", out)


def test_the_next_page_is_asked_with_the_cursor_and_keeps_the_limit(host: Host, screen: Console) -> None:
    host.answers({"dead_letters": [letter("b-1", size=12)], "next": "a/b+c="})

    assert main(["dead-letters", "--limit", "10", "--before", "x y/z"]) == 0

    assert host.query() == {"limit": ["10"], "before": ["x y/z"]}
    out = printed(screen)
    assert "12 B" in out and on_one_line("next page: mlops dead-letters --limit 10 --before a/b+c=", out)


def test_a_last_page_says_no_next_page(host: Host, screen: Console) -> None:
    host.answers({"dead_letters": [], "next": None})
    assert main(["dead-letters", "--limit", "500"]) == 0
    assert host.query() == {"limit": ["500"]} and "next page" not in printed(screen)


def test_an_older_host_with_whole_payloads_and_no_paging(host: Host, screen: Console) -> None:
    old = {k: v for k, v in letter("b-1").items() if k not in ("size", "sha256", "excerpt", "truncated")}
    host.answers({"dead_letters": [{**old, "payload": {"data": "x" * 3000}}]})

    assert main(["dead-letters"]) == 0
    out = printed(screen)
    assert "b-1" in out and "?" in out and "next page" not in out

    (kept,) = HostClient().dead_letters()  # what callers before paging read: the list
    assert len(kept["excerpt"]) == DEAD_LETTER_EXCERPT_CHARS and kept["truncated"] is True
    assert kept["size"] is None and kept["sha256"] is None and kept["payload"] == {"data": "x" * 3000}


def test_dead_letters_json_is_the_list_and_the_next_page_goes_to_stderr(
    host: Host, screen: Console, capsys: pytest.CaptureFixture[str]
) -> None:
    host.answers({"dead_letters": [letter()], "next": "n1"})
    assert main(["dead-letters", "--json", "--limit", "5"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [letter()]
    assert captured.err.strip() == "next page: mlops dead-letters --json --limit 5 --before n1"


def test_the_client_pages_dead_letters(host: Host) -> None:
    host.answers({"dead_letters": [letter()], "next": "n2"})
    page = HostClient().dead_letters_page(limit=3, before="n1")
    assert page == {"dead_letters": [letter()], "next": "n2"}
    assert host.urls == [f"{HOST}/api/dead-letters?limit=3&before=n1"]


@pytest.mark.parametrize("command", ["dead-letters", "parked"])
@pytest.mark.parametrize("limit", ["0", "501", "ten"])
def test_a_limit_the_host_would_refuse_is_a_usage_error(
    host: Host, capsys: pytest.CaptureFixture[str], command: str, limit: str
) -> None:
    with pytest.raises(SystemExit) as usage:
        main([command, "--limit", limit])
    assert usage.value.code == 2 and host.urls == []
    assert "argument --limit" in capsys.readouterr().err


# --- parked events ----------------------------------------------------------------------------------------


def parked(release_id: str = LONG_ID, event_id: str = EVENT_ID) -> dict[str, Any]:
    return {"release_id": release_id, "event_id": event_id, "event_type": "[red]MLOps.ModelRegistered[/red]",
            "parked_at": "2026-12-04T01:53:00+00:00", "expires_at": "2026-12-05T01:53:00+00:00"}  # fmt: skip


def test_parked_lists_a_page_with_ids_whole_and_the_next_page(host: Host, screen: Console) -> None:
    host.answers({"parked": [parked(), parked(DATA_ID, "e-2")], "next": "p-2"})

    assert main(["parked"]) == 0

    assert host.urls == [f"{HOST}/api/parked?limit=50"]
    out = printed(screen)
    for text in (LONG_ID, EVENT_ID, DATA_ID, "[red]MLOps.ModelRegistered[/red]", "2026-12-05 01:53:00"):
        assert on_one_line(text, out)
    assert on_one_line("next page: mlops parked --before p-2", out)


def test_parked_json_and_the_client(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    host.answers({"parked": [parked()], "next": None})
    assert main(["parked", "--json", "--before", "p-1"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [parked()] and captured.err == ""
    assert host.query() == {"limit": ["50"], "before": ["p-1"]}
    assert HostClient().parked_page(limit=2) == {"parked": [parked()], "next": None}


def test_parked_on_an_older_host_says_why_it_is_missing(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    host.answers({"error": "not found"}, status=404)
    assert main(["parked"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "404: not found" in out and "older than this mlops" in out


def test_the_next_page_command_can_be_pasted_into_a_shell() -> None:
    assert next_page_command("parked", 50, "abc") == "mlops parked --before abc"
    assert next_page_command("dead-letters", 50, "a b;c") == "mlops dead-letters --before 'a b;c'"


def test_literal_text_is_never_markup() -> None:
    assert literal("[bold]x[/bold]").plain == "[bold]x[/bold]" and literal(None).plain == ""
    assert literal("tab\tand\nnewline\r\n").plain == "tab\tand\nnewline\n"


def test_an_error_from_the_host_with_markup_in_it_is_printed_as_typed(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devhost import cli

    recording = Console(width=80, file=io.StringIO(), record=True)
    monkeypatch.setattr(cli, "console", recording)
    host.answers({"error": "release [/bold] not found"}, status=404)
    assert main(["show", "rel-x"]) == 1
    assert "release [/bold] not found" in recording.export_text()
