"""Release store on Azure Table Storage, with the entity ETag as the optimistic-concurrency check.

Four tables, named from one prefix (MLOPS_TABLES_NAME, default "releases"):

- ``<prefix>``: one entity per release. PartitionKey ``"release"``, RowKey the release id. The
  document (Release.to_json) is JSON in string properties ``doc0``, ``doc1``, ... (``parts`` says
  how many): Table Storage caps a property at 64 KiB and an entity at 1 MiB, and a release with
  a long timeline outgrows one property. ``state`` and ``created_at`` are properties of their own
  so ``list(states=...)`` filters on the server; ``version`` is a property too (and in the
  document).
- ``<prefix>parked``: PartitionKey the release id, RowKey the event id (so parking an event twice
  keeps one), ``seq`` a sortable sequence for oldest-first replay.
- ``<prefix>deadletters``: PartitionKey the function name, RowKey the event id (so a dead letter
  is kept once per (event id, function)), ``seq`` for newest-first listing.
- ``<prefix>work``: the outbox. PartitionKey ``"work"``, RowKey the item's key (so adding a key
  twice keeps the first). ``due_at`` (ISO UTC, which sorts as text) is a property, so "what is due"
  is an OData ``due_at le '<now>'`` filter on the server; ``release_id``, ``kind``, ``attempts``,
  ``last_error`` and ``version`` are properties too, the payload is JSON in ``doc0``... like a
  release's document. The order (earliest due first, then key) is applied here: rows come back in
  RowKey order. The spent nonces of single-use tokens (signed action links) have a partition of
  their own in this table, PartitionKey ``"nonce"``, RowKey the nonce, property ``expires_at``:
  spending is an insert, so of two spenders exactly one succeeds (the other gets 409, "spent").
  Now and then (at most every ``NONCE_CLEANUP_S`` per store object) a spend drops the nonces that
  expired long enough before it (functions.ports.forgettable_before).

Concurrency: ``save`` writes with ``If-Match: <ETag>`` of the version it was loaded at, so of two
handlers that loaded the same version only one write succeeds; the other gets 412 and the
store raises ConcurrencyError. The store object remembers, per release, the (version, ETag) it
last read or wrote. A release whose ETag it does not know (saved through another store object,
or a copy made with Release.from_json) costs one extra read: the stored version must equal
``release.version``, and the ETag read with it is used for the conditional write, so a write
in between still fails the check. ``claim_work`` and ``retry_work`` do the same with work items
(the loser of a claim gets None; a stale retry changes nothing).

Keys: PartitionKey and RowKey may not contain / \\ # ? or control characters; those (and %)
are written as %XX, so every distinct id keeps a distinct key.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import hashlib
import heapq
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from functions.domain.events import wire_type
from functions.domain.refs import DeadLetter, ParkedEvent, WorkItem
from functions.domain.release import Release
from functions.ports import ConcurrencyError, forgettable_before, utc_iso

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from platforms.azure.settings import AzureSettings

RELEASE_PARTITION = "release"
WORK_PARTITION = "work"
NONCE_PARTITION = "nonce"  # in the work table: no table of its own to provision
NONCE_CLEANUP_S = 600.0
NONCE_CLEANUP_BATCH = 100
# json.dumps escapes every non-ASCII character, so one character is one UTF-16 code unit (2 bytes):
# 32,000 characters are 64,000 bytes, under the 64 KiB a string property may hold.
PART_CHARS = 32_000
# 15 full parts are ~938 KiB; with the other properties an entity stays under the 1 MiB limit.
MAX_PARTS = 15
# A reason is free text: characters outside the BMP take two UTF-16 units, so allow half a part.
MAX_REASON_CHARS = PART_CHARS // 2
# Keys may be 1 KiB (512 UTF-16 code units); longer ids are shortened and made unique by a hash.
MAX_KEY_CHARS = 400
# Azure counts at most 15 comparisons in one filter; one goes to PartitionKey.
STATES_PER_QUERY = 14
ETAG_CACHE_SIZE = 10_000
_TABLE_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{2,51}")  # + "deadletters" stays within 63 characters
_PRECONDITION_FAILED = 412
_KEY_UNSAFE = re.compile(r"[%/\\#?\x00-\x1f\x7f-\x9f]")


class DocumentTooLarge(ValueError):
    """The JSON does not fit one Table entity (about 480,000 characters)."""


class TableReleaseStore:
    def __init__(self, service: TableServiceClient, name_prefix: str = "releases") -> None:
        if not _TABLE_PREFIX.fullmatch(name_prefix):
            raise ValueError(
                f"table prefix {name_prefix!r}: a letter, then 2-51 letters or digits "
                "(the tables are <prefix>, <prefix>parked, <prefix>deadletters, <prefix>work)"
            )
        self.name_prefix = name_prefix
        self._releases: TableClient = service.create_table_if_not_exists(name_prefix)
        self._parked: TableClient = service.create_table_if_not_exists(f"{name_prefix}parked")
        self._dead: TableClient = service.create_table_if_not_exists(f"{name_prefix}deadletters")
        self._work: TableClient = service.create_table_if_not_exists(f"{name_prefix}work")
        self._etags = _EtagCache()  # release id -> (version, ETag)
        self._work_etags = _EtagCache()  # work item key -> (version, ETag)
        self._nonces_cleaned_at: float | None = None

    @classmethod
    def from_settings(cls, settings: AzureSettings, credential: TokenCredential | None = None) -> TableReleaseStore:
        """The store the Function App uses: its managed identity needs "Storage Table Data Contributor"."""
        from platforms.azure.clients import credential_or_default

        service = TableServiceClient(endpoint=settings.tables_endpoint, credential=credential_or_default(credential))
        return cls(service, settings.tables_name)

    # ---- releases -------------------------------------------------------------------
    def get(self, release_id: str) -> Release | None:
        try:
            entity = self._releases.get_entity(RELEASE_PARTITION, table_key(release_id))
        except ResourceNotFoundError:
            return None
        return self._release(entity)

    def create(self, release: Release) -> bool:
        release.version = 1
        try:
            metadata = self._releases.create_entity(self._release_entity(release))
        except ResourceExistsError:
            release.version = 0
            return False
        except BaseException:
            release.version = 0
            raise
        self._etags.remember(release.id, 1, metadata["etag"])
        return True

    def save(self, release: Release) -> None:
        expected = release.version
        etag = self._etag_of(release.id, expected)
        release.version = expected + 1
        try:
            entity = self._release_entity(release)
            metadata = self._releases.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            release.version = expected
            self._etags.forget(release.id, etag)
            raise ConcurrencyError(f"release {release.id} changed since version {expected}") from None
        except HttpResponseError as error:
            release.version = expected
            if error.status_code == _PRECONDITION_FAILED:
                self._etags.forget(release.id, etag)
                raise ConcurrencyError(f"release {release.id} changed since version {expected}") from None
            raise
        except BaseException:
            release.version = expected
            raise
        self._etags.remember(release.id, release.version, metadata["etag"])

    def list(self, limit: int = 100, states: Iterable[str] | None = None) -> builtins.list[Release]:
        """Newest first. The state filter runs on the server; the order is applied here (RowKey is
        the release id, so the table cannot return releases by age)."""
        wanted = sorted(set(states or []))
        if wanted:
            groups = [wanted[i : i + STATES_PER_QUERY] for i in range(0, len(wanted), STATES_PER_QUERY)]
            entities = [entity for group in groups for entity in self._query_states(group)]
        else:
            entities = list(self._releases.query_entities("PartitionKey eq @pk", parameters={"pk": RELEASE_PARTITION}))
        releases = [self._release(entity) for entity in entities]
        releases.sort(key=lambda release: (release.created_at, release.id), reverse=True)
        return releases[:limit]

    def _query_states(self, states: builtins.list[str]) -> Iterator[TableEntity]:
        parameters: dict[str, Any] = {"pk": RELEASE_PARTITION}
        parameters.update({f"s{i}": state for i, state in enumerate(states)})
        either = " or ".join(f"state eq @s{i}" for i in range(len(states)))
        # Spaces around the parentheses: the SDK finds @parameters by splitting the filter on spaces.
        return self._releases.query_entities(f"PartitionKey eq @pk and ( {either} )", parameters=parameters)

    def _release_entity(self, release: Release) -> dict[str, Any]:
        return {
            "PartitionKey": RELEASE_PARTITION,
            "RowKey": table_key(release.id),
            "state": release.state.value,
            "created_at": release.created_at,
            "version": release.version,
            **split_json(json.dumps(release.to_json()), what=f"release {release.id}"),
        }

    def _release(self, entity: TableEntity) -> Release:
        release = Release.from_json(json.loads(join_json(entity)), copy_document=False)
        release.version = int(entity["version"])
        self._etags.remember(release.id, release.version, etag_of(entity))
        return release

    def _etag_of(self, release_id: str, version: int) -> str:
        """The ETag of the stored release at ``version``; ConcurrencyError when it is at another one."""
        known = self._etags.get(release_id)
        if known is not None and known[0] == version:
            return known[1]
        try:
            entity = self._releases.get_entity(RELEASE_PARTITION, table_key(release_id), select=["version"])
        except ResourceNotFoundError:
            raise ConcurrencyError(f"release {release_id} does not exist") from None
        stored = int(entity["version"])
        if stored != version:
            raise ConcurrencyError(f"release {release_id} is at version {stored}, not {version}")
        etag = etag_of(entity)
        self._etags.remember(release_id, stored, etag)
        return etag

    # ---- parked events --------------------------------------------------------------
    def park(self, release_id: str, event_id: str, payload: dict[str, Any], parked_at: str) -> None:
        entity = {
            "PartitionKey": table_key(release_id),
            "RowKey": table_key(event_id),
            "release_id": release_id,
            "event_id": event_id,
            "event_type": wire_type(payload),
            "parked_at": utc_iso(parked_at),
            "seq": next_sequence(),
            **split_json(json.dumps(payload), what=f"parked event {event_id}"),
        }
        with contextlib.suppress(ResourceExistsError):  # parked already: once per (release, event id)
            self._parked.create_entity(entity)

    def take_parked(self, release_id: str) -> builtins.list[dict[str, Any]]:
        """Oldest first. Each event is claimed with a conditional write before it is deleted, so two
        concurrent takers never both get it; one that is claimed but not deleted (the taker died)
        is taken again next time."""
        entities = list(self._parked.query_entities("PartitionKey eq @pk", parameters={"pk": table_key(release_id)}))
        entities.sort(key=lambda entity: (entity["seq"], entity["RowKey"]))
        taken: builtins.list[dict[str, Any]] = []
        for entity in entities:
            claim = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], "taken_at": next_sequence()}
            try:
                self._parked.update_entity(
                    claim,
                    mode=UpdateMode.MERGE,
                    etag=etag_of(entity),
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another taker has it
            self._parked.delete_entity(entity["PartitionKey"], entity["RowKey"])  # a delete that finds nothing is fine
            taken.append(json.loads(join_json(entity)))
        return taken

    def parked(self, limit: int = 100, before: str | None = None) -> builtins.list[ParkedEvent]:
        """Newest first, picked here (the table is keyed by release) from the listed columns only: no payload
        is read."""
        rows = self._rows(self._parked, _PARKED_COLUMNS, before)
        return [_parked_event(entity) for entity in heapq.nlargest(limit, rows, key=lambda entity: entity["seq"])]

    def parked_before(self, cutoff: str, limit: int = 100) -> builtins.list[tuple[ParkedEvent, dict[str, Any]]]:
        """Oldest first. Chosen from the listed columns (events parked before parked_at was kept count from
        their entity's Timestamp); only the chosen ones' payloads are read, one by one."""
        rows = self._parked.list_entities(select=_PARKED_COLUMNS)
        old = (entity for entity in rows if _parked_at(entity) < utc_iso(cutoff))
        chosen = heapq.nsmallest(limit, old, key=lambda entity: (_parked_at(entity), entity["seq"]))
        found: builtins.list[tuple[ParkedEvent, dict[str, Any]]] = []
        for entity in chosen:
            try:
                whole = self._parked.get_entity(entity["PartitionKey"], entity["RowKey"])
            except ResourceNotFoundError:
                continue  # taken since it was listed
            found.append((_parked_event(entity), json.loads(join_json(whole))))
        return found

    def unpark(self, release_id: str, event_id: str) -> bool:
        keys = (table_key(release_id), table_key(event_id))
        try:
            entity = self._parked.get_entity(*keys)
            self._parked.delete_entity(*keys, etag=etag_of(entity), match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, ResourceModifiedError):
            return False  # gone, or a taker claimed it first
        return True

    @staticmethod
    def _rows(table: TableClient, columns: builtins.list[str], before: str | None) -> Iterable[TableEntity]:
        """The rows of ``table`` (only ``columns``), those with a sequence before ``before`` if given."""
        if before:
            return table.query_entities("seq lt @before", parameters={"before": before}, select=columns)
        return table.list_entities(select=columns)

    # ---- dead letters ---------------------------------------------------------------
    def add_dead_letter(self, letter: DeadLetter) -> bool:
        entity = {
            "PartitionKey": table_key(letter.function),
            "RowKey": table_key(letter.event_id),
            "event_id": letter.event_id,
            "function": letter.function,
            "event_type": letter.event_type,
            "reason": letter.reason[:MAX_REASON_CHARS],
            "received_at": letter.received_at,
            "seq": next_sequence(),
            **split_json(json.dumps(letter.stored()), what="dead letter"),
        }
        try:
            self._dead.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    def dead_letters(self, limit: int = 100, before: str | None = None) -> builtins.list[DeadLetter]:
        """Newest first: picked here from the keys and sequence only (the keys are the event ids, so rows
        come in another order), then the page's letters read one by one; ``before`` filters on the server."""
        keys = heapq.nlargest(limit, self._rows(self._dead, _KEY_COLUMNS, before), key=lambda entity: entity["seq"])
        entities = []
        for key in keys:
            with contextlib.suppress(ResourceNotFoundError):
                entities.append(self._dead.get_entity(key["PartitionKey"], key["RowKey"]))
        return [
            DeadLetter.from_stored(
                entity["event_id"],
                entity["event_type"],
                entity["function"],
                entity["reason"],
                entity["received_at"],
                json.loads(join_json(entity)),
                entity["seq"],
            )
            for entity in entities
        ]

    # ---- the outbox -----------------------------------------------------------------
    def add_work(self, item: WorkItem) -> bool:
        entity = self._work_entity(dataclasses.replace(item, version=1))
        try:
            metadata = self._work.create_entity(entity)
        except ResourceExistsError:
            return False
        self._work_etags.remember(item.key, 1, metadata["etag"])
        return True

    def due_work(self, now: str, limit: int = 100) -> builtins.list[WorkItem]:
        """Earliest due first: the server filters on ``due_at``, the order is applied here."""
        entities = self._work.query_entities(
            "PartitionKey eq @pk and due_at le @now", parameters={"pk": WORK_PARTITION, "now": now}
        )
        return self._work_items(entities, limit)

    def claim_work(self, item: WorkItem, lease_until: str) -> WorkItem | None:
        claimed = dataclasses.replace(item, due_at=lease_until, attempts=item.attempts + 1, version=item.version + 1)
        changes = {"due_at": claimed.due_at, "attempts": claimed.attempts, "version": claimed.version}
        return claimed if self._write_work_if_unchanged(item, changes) else None

    def retry_work(self, item: WorkItem, due_at: str, error: str) -> None:
        # Conditional like a claim: when the lease ran out and another worker claimed the item,
        # that worker's outcome counts, not this stale one.
        changes = {"due_at": due_at, "last_error": error[:MAX_REASON_CHARS], "version": item.version + 1}
        self._write_work_if_unchanged(item, changes)

    def finish_work(self, item: WorkItem) -> bool:
        def delete(etag: str) -> None:
            self._work.delete_entity(
                WORK_PARTITION, table_key(item.key), etag=etag, match_condition=MatchConditions.IfNotModified
            )

        if not self._if_work_unchanged(item, delete):
            return False
        self._work_etags.drop(item.key)
        return True

    def pending_work(self, release_id: str | None = None, limit: int = 100) -> builtins.list[WorkItem]:
        query, parameters = "PartitionKey eq @pk", {"pk": WORK_PARTITION}
        if release_id is not None:
            query, parameters = f"{query} and release_id eq @release", {**parameters, "release": release_id}
        return self._work_items(self._work.query_entities(query, parameters=parameters), limit)

    # ---- single-use tokens ----------------------------------------------------------
    def spend_nonce(self, nonce: str, expires_at: str) -> bool:
        expires_at = utc_iso(expires_at)
        entity = {"PartitionKey": NONCE_PARTITION, "RowKey": table_key(nonce), "expires_at": expires_at}
        try:
            self._work.create_entity(entity)
        except ResourceExistsError:
            return False
        self._forget_old_nonces(forgettable_before(expires_at))
        return True

    def nonce_spent(self, nonce: str) -> bool:
        try:
            self._work.get_entity(NONCE_PARTITION, table_key(nonce), select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    def _forget_old_nonces(self, before: str) -> None:
        """Opportunistic: a failed or raced cleanup changes nothing the next one cannot do."""
        now = time.monotonic()
        if self._nonces_cleaned_at is not None and now - self._nonces_cleaned_at < NONCE_CLEANUP_S:
            return
        self._nonces_cleaned_at = now
        with contextlib.suppress(HttpResponseError):  # ResourceNotFoundError too: another store dropped it
            old = self._work.query_entities(
                "PartitionKey eq @pk and expires_at lt @before",
                parameters={"pk": NONCE_PARTITION, "before": before},
                select=["PartitionKey", "RowKey"],
            )
            for count, entity in enumerate(old):
                if count >= NONCE_CLEANUP_BATCH:
                    break
                with contextlib.suppress(ResourceNotFoundError):
                    self._work.delete_entity(NONCE_PARTITION, entity["RowKey"])

    def _write_work_if_unchanged(self, item: WorkItem, changes: dict[str, Any]) -> bool:
        """MERGE ``changes`` into the stored item if it is still at ``item.version``; False if it is not (or gone)."""
        entity = {"PartitionKey": WORK_PARTITION, "RowKey": table_key(item.key), **changes}

        def merge(etag: str) -> None:
            metadata = self._work.update_entity(
                entity, mode=UpdateMode.MERGE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
            self._work_etags.remember(item.key, int(changes["version"]), metadata["etag"])

        return self._if_work_unchanged(item, merge)

    def _if_work_unchanged(self, item: WorkItem, operation: Callable[[str], None]) -> bool:
        """Run ``operation(etag)`` if the stored item is still at ``item.version``; False when it is not, or gone."""
        etag = self._work_etag_of(item)
        if etag is None:
            return False
        try:
            operation(etag)
        except (ResourceModifiedError, ResourceNotFoundError):
            self._work_etags.forget(item.key, etag)
            return False
        except HttpResponseError as error:
            if error.status_code != _PRECONDITION_FAILED:
                raise
            self._work_etags.forget(item.key, etag)
            return False
        return True

    def _work_etag_of(self, item: WorkItem) -> str | None:
        """The ETag of the stored item at ``item.version``; None when it is at another version or gone."""
        known = self._work_etags.get(item.key)
        if known is not None and known[0] == item.version:
            return known[1]
        try:
            entity = self._work.get_entity(WORK_PARTITION, table_key(item.key), select=["version"])
        except ResourceNotFoundError:
            return None
        stored, etag = int(entity["version"]), etag_of(entity)
        self._work_etags.remember(item.key, stored, etag)
        return etag if stored == item.version else None

    def _work_entity(self, item: WorkItem) -> dict[str, Any]:
        return {
            "PartitionKey": WORK_PARTITION,
            "RowKey": table_key(item.key),
            "key": item.key,
            "kind": item.kind,
            "release_id": item.release_id,
            "due_at": item.due_at,
            "attempts": item.attempts,
            "last_error": item.last_error[:MAX_REASON_CHARS],
            "version": item.version,
            # Room for the other properties (last_error may take half a part) beside the payload.
            **split_json(json.dumps(item.payload), max_parts=MAX_PARTS - 2, what=f"work item {item.key}"),
        }

    def _work_items(self, entities: Iterable[TableEntity], limit: int) -> builtins.list[WorkItem]:
        items = []
        for entity in entities:
            item = WorkItem(
                key=entity["key"],
                kind=entity["kind"],
                release_id=entity["release_id"],
                payload=json.loads(join_json(entity)),
                due_at=entity["due_at"],
                attempts=int(entity["attempts"]),
                last_error=entity.get("last_error") or "",
                version=int(entity["version"]),
            )
            self._work_etags.remember(item.key, item.version, etag_of(entity))
            items.append(item)
        items.sort(key=lambda item: (item.due_at, item.key))
        return items[:limit]


# ---- helpers ------------------------------------------------------------------------
class _EtagCache:
    """The (version, ETag) a store object last read or wrote, per key, for its next conditional write.

    Bounded (least recently used go first); a slower read of an older version does not replace a newer one.
    """

    def __init__(self, size: int = ETAG_CACHE_SIZE) -> None:
        self._size = size
        self._known: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[int, str] | None:
        with self._lock:
            return self._known.get(key)

    def remember(self, key: str, version: int, etag: str) -> None:
        with self._lock:
            known = self._known.get(key)
            if known is not None and known[0] > version:
                return
            self._known[key] = (version, etag)
            self._known.move_to_end(key)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def forget(self, key: str, etag: str) -> None:
        """Drop what is known of ``key`` if it is still ``etag`` (a write with it just failed)."""
        with self._lock:
            known = self._known.get(key)
            if known is not None and known[1] == etag:
                del self._known[key]

    def drop(self, key: str) -> None:
        with self._lock:
            self._known.pop(key, None)


def etag_of(entity: TableEntity) -> str:
    """The ETag Table Storage returned with ``entity`` (every entity read from the service has one)."""
    etag = entity.metadata.get("etag")
    if not etag:
        raise RuntimeError(f"Table Storage returned entity {entity.get('RowKey')!r} without an ETag")
    return etag


def table_key(text: str) -> str:
    """A PartitionKey/RowKey for ``text``: / \\ # ? control characters and % become %XX."""
    key = _KEY_UNSAFE.sub(lambda match: f"%{ord(match.group()):02X}", text)
    if len(key) > MAX_KEY_CHARS or any(ord(char) > 0xFFFF for char in key):
        # Too long (or astral characters, which count twice): a readable prefix and a hash of the whole.
        readable = "".join(char for char in key[:200] if ord(char) <= 0xFFFF)
        key = f"{readable}~{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"
    return key


def split_json(text: str, *, what: str, max_parts: int = MAX_PARTS) -> dict[str, Any]:
    """``text`` (ASCII JSON) as properties doc0..docN-1 and parts=N."""
    if not text.isascii():  # json.dumps escapes non-ASCII by default; keep the size arithmetic true
        text = json.dumps(json.loads(text))
    parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
    if len(parts) > max_parts:
        raise DocumentTooLarge(
            f"{what}: {len(text)} characters of JSON do not fit one Table entity "
            f"({max_parts} properties of {PART_CHARS} characters)"
        )
    return {"parts": len(parts), **{f"doc{i}": part for i, part in enumerate(parts)}}


def join_json(entity: TableEntity) -> str:
    return "".join(entity[f"doc{i}"] for i in range(int(entity["parts"])))


_sequence_lock = threading.Lock()
_last_sequence = 0


_KEY_COLUMNS = ["PartitionKey", "RowKey", "seq"]
# Timestamp too: events parked before parked_at was kept are aged by it.
_PARKED_COLUMNS = [*_KEY_COLUMNS, "release_id", "event_id", "event_type", "parked_at", "Timestamp"]


def _parked_at(entity: Any) -> str:
    """When an event was parked: its parked_at, or (parked by an older version) its entity's Timestamp."""
    if entity.get("parked_at"):
        return str(entity["parked_at"])
    stamp = entity.metadata.get("timestamp")
    return utc_iso(stamp.isoformat()) if stamp else ""


def _parked_event(entity: Any) -> ParkedEvent:
    release_id = entity.get("release_id") or unquote(entity["PartitionKey"])
    return ParkedEvent(release_id, entity["event_id"], entity.get("event_type", ""), _parked_at(entity), entity["seq"])


def next_sequence() -> str:
    """Increasing within this process (nanoseconds since the epoch, bumped on a tie), sortable as text."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(time.time_ns(), _last_sequence + 1)
        return f"{_last_sequence:020d}"
