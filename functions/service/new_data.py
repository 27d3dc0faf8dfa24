"""Retraining on new data: BlobCreated joins (or opens) the debounce window; its end starts the release.

The window is durable in the store: the release (state ``collecting``, the blobs in its trigger) and a
work item keyed by the container and prefix (``DataTrigger.window_key``), due when the window closes.
Adding that work item is create-if-absent, so of two blobs racing to open a window exactly one does;
the other joins it. Every write to the release is compare-and-set (ConcurrencyError: delivery retries).

Idempotent: a blob event is recorded once in its window (the release's handled events), and a spent
nonce (``data_trigger.seen_key``) remembers it after the window closed, for two days, past Event
Grid's 24-hour retries. Not covered: a host that dies between recording a blob and spending its
nonce, whose redelivery arrives after the window closed, starts a second window for that blob.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from functions.domain import data_trigger
from functions.domain import events as ev
from functions.domain.refs import WorkItem
from functions.domain.release import Release, State
from functions.ports import ConcurrencyError
from functions.service.context import Context
from functions.service.results import Outcome
from functions.service.steps import advance
from functions.service.unit_of_work import claimed, get, note

log = logging.getLogger("mlops.new_data")

SEEN_FOR = timedelta(days=2)


def on_blob_created(ctx: Context, event: ev.BlobCreated) -> Outcome:
    trigger = ctx.data_trigger
    if trigger is None:
        return Outcome.IGNORED  # retraining on new data is off
    name = trigger.blob_name(event.subject)
    if name is None:
        return Outcome.IGNORED  # another container, or outside the prefix
    if event.size == 0:
        log.info("blob %s is empty: not training data", name)
        return Outcome.IGNORED
    if ctx.ports.store.nonce_spent(data_trigger.seen_key(event.id)):
        return Outcome.DUPLICATE  # counted in a window that has closed since
    outcome = _record(ctx, trigger, event, name)
    ctx.ports.store.spend_nonce(data_trigger.seen_key(event.id), (ctx.clock() + SEEN_FOR).isoformat())
    return outcome


def _record(ctx: Context, trigger: data_trigger.DataTrigger, event: ev.BlobCreated, name: str) -> Outcome:
    now = ctx.clock()
    window = open_window(ctx, trigger)
    if window is None:
        release_id = data_trigger.window_release_id(now, event.id)
        due = (now + trigger.debounce).isoformat(timespec="seconds")
        item = WorkItem(trigger.window_key, data_trigger.CLOSE_WINDOW, trigger.window_key, {"release": release_id}, due)
        if not ctx.ports.store.add_work(item):
            raise ConcurrencyError("another blob opened the window a moment ago: join it")
        window = item
    release_id = str(window.payload["release"])
    release = ctx.ports.store.get(release_id)
    if release is None:  # this blob opened the window (or the one that did died before creating it)
        opened = datetime.fromisoformat(window.due_at) - trigger.debounce
        release = Release.collecting(release_id, data_trigger.window_trigger(trigger, opened), now)
        release.data_arrived(now, event.blob(name))
        release.mark_handled(event.id)
        if ctx.ports.store.create(claimed(ctx, release)):
            log.info("new data %s opened window %s (closes %s)", name, release_id, window.due_at)
            return Outcome.HANDLED
        release = get(ctx, release_id)
    if release.has_handled(event.id):
        return note(ctx, release, "duplicate_event", f"event {event.id} delivered again", Outcome.DUPLICATE)
    if release.state != State.COLLECTING:  # closed a moment ago; its work item goes next
        raise ConcurrencyError(f"window {release_id} has just closed: open the next one")
    release.data_arrived(now, event.blob(name))
    release.mark_handled(event.id)
    ctx.ports.store.save(claimed(ctx, release))
    return Outcome.HANDLED


def open_window(ctx: Context, trigger: data_trigger.DataTrigger) -> WorkItem | None:
    """The container and prefix's window work item, while it is pending."""
    pending = ctx.ports.store.pending_work(trigger.window_key, limit=1)
    return pending[0] if pending else None


def close_window(ctx: Context, item: WorkItem) -> bool:
    """The window's end: the release trains on the newest blob. False when there is nothing to do."""
    release = ctx.ports.store.get(str(item.payload.get("release") or ""))
    if release is None or release.state != State.COLLECTING:
        return False  # no blob was recorded, or a previous attempt closed it
    release.data_window_closed(ctx.clock())
    ctx.ports.store.save(claimed(ctx, release))  # the claim: a blob racing in gets ConcurrencyError, retries
    log.info("window %s closed: %s blob(s)", release.id, release.trigger.get("blob_count"))
    advance(ctx, release)
    return True
