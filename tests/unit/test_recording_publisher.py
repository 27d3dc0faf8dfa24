"""RecordingPublisher's own tests (the double lives in tests/doubles/publisher.py)."""

from __future__ import annotations

import threading

import pytest

from tests.doubles.publisher import RecordingPublisher


def test_records_the_envelope_and_returns_its_id():
    publisher = RecordingPublisher()
    event_id = publisher.publish("MLOps.BuildCompleted", "builds/1", {"buildId": "1", "result": "succeeded"})
    [event] = publisher.events
    assert event["id"] == event_id
    assert event["eventType"] == "MLOps.BuildCompleted"
    assert event["data"] == {"buildId": "1", "result": "succeeded"}


def test_wait_for_sees_an_event_published_from_another_thread():
    publisher = RecordingPublisher()
    # Whichever runs first, wait_for finds the event already there or is notified of it: no timing involved.
    thread = threading.Thread(target=publisher.publish, args=("MLOps.BuildCompleted", "builds/2", {"buildId": "2"}))
    thread.start()
    event = publisher.wait_for(lambda e: e["subject"] == "builds/2", timeout_s=60)
    thread.join()
    assert event["data"] == {"buildId": "2"}


def test_wait_for_names_what_was_published_when_it_times_out():
    publisher = RecordingPublisher()
    publisher.publish("MLOps.BuildCompleted", "builds/3", {})
    with pytest.raises(AssertionError, match="builds/3"):
        publisher.wait_for(lambda e: False, timeout_s=0)  # gives up at once: nothing waits
