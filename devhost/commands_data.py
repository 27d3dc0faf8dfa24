"""`mlops trigger data FILE`, and the folder `mlops up` watches: new training data, as Storage reports it.

Both send the Microsoft.Storage.BlobCreated event Event Grid would deliver to on_storage_event for a blob
in the training-data container ($MLOPS_HOME/<MLOPS_DATA_CONTAINER>, default training-data, under
MLOPS_DATA_PREFIX). Blobs within MLOPS_DATA_DEBOUNCE_SECONDS of the first start one release, trained on
the newest (functions/service/new_data.py).
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from devhost.client import HostClient
from devhost.console import console
from functions.settings import Settings, SettingsError

log = logging.getLogger("mlops.data")

STORAGE_FUNCTION = "on_storage_event"
WATCH_INTERVAL_S = 2.0


def cmd_trigger_data(args: argparse.Namespace) -> int:
    """`mlops trigger data FILE`: copy FILE into the training-data container and report the new blob."""
    from platforms.local.data_folder import blob_created, put

    settings = Settings.from_env()
    trigger = settings.data_trigger
    if trigger is None:
        raise SettingsError("retraining on new data is off (MLOPS_DATA_CONTAINER=off): nothing would start")
    source = Path(args.file)
    if not source.is_file():
        raise SettingsError(f"{source}: no such file")
    if source.stat().st_size == 0:
        raise SettingsError(f"{source} is empty: not training data")
    blob = put(settings.home, trigger, source)
    event = blob_created(settings.home, trigger, blob)
    HostClient(settings.host_url).deliver(STORAGE_FUNCTION, [event])
    seconds = int(trigger.debounce.total_seconds())
    console.print(f"blob {trigger.container}/{event['subject'].split('/blobs/', 1)[1]} ({blob.stat().st_size} bytes) "
                  f"delivered as event {event['id']}", markup=False, soft_wrap=True)  # fmt: skip
    console.print(f"blobs within {seconds} s of the window's first start one release, trained on the newest; "
                  "`mlops releases` shows it (collecting until then)", markup=False, soft_wrap=True)  # fmt: skip
    return 0


def start_watching(settings: Settings, stop: threading.Event) -> threading.Thread | None:
    """Watch the training-data folder while `mlops up` serves (a daemon thread); None when the trigger is off."""
    from platforms.local.data_folder import FolderWatcher, container_dir

    trigger = settings.data_trigger
    if trigger is None:
        return None
    container_dir(settings.home, trigger).mkdir(parents=True, exist_ok=True)
    client = HostClient(settings.host_url)
    watcher = FolderWatcher(settings.home, trigger, lambda event: client.deliver(STORAGE_FUNCTION, [event]))

    def watch() -> None:
        while not stop.wait(WATCH_INTERVAL_S):
            try:
                for path in watcher.poll():
                    log.info("new data: %s", path)
            except Exception:  # the host may still be starting, or busy: the next poll tries again
                log.warning(
                    "watching %s: a poll failed; trying again", container_dir(settings.home, trigger), exc_info=True
                )

    thread = threading.Thread(target=watch, name="training-data watcher", daemon=True)
    thread.start()
    return thread
