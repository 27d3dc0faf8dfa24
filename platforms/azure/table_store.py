"""Release store on Azure Table Storage, with the entity ETag as the optimistic-concurrency check.

Three tables, named from one prefix (MLOPS_TABLES_NAME, default "releases"):

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

Concurrency: ``save`` writes with ``If-Match: <ETag>`` of the version it was loaded at, so of two
handlers that loaded the same version only one write succeeds; the other gets 412 and the
store raises ConcurrencyError. The store object remembers, per release, the (version, ETag) it
last read or wrote. A release whose ETag it does not know (saved through another store object,
or a copy made with Release.from_json) costs one extra read: the stored version must equal
``release.version``, and the ETag read with it is used for the conditional write, so a write
in between still fails the check.

Keys: PartitionKey and RowKey may not contain / \\ # ? or control characters; those (and %)
are written as %XX, so every distinct id keeps a distinct key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from functions.ports import ConcurrencyError
from functions.domain.refs import DeadLetter
from functions.domain.release import Release

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from platforms.azure.settings import AzureSettings

RELEASE_PARTITION = "release"
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
_KEY_UNSAFE = re.compile(r"[%/\\#?\x00-\x1f\x7f-\x9f]")


class DocumentTooLarge(ValueError):
    """The JSON does not fit one Table entity (about 480,000 characters)."""


class TableReleaseStore:
    def __init__(self, service: TableServiceClient, name_prefix: str = "releases") -> None:
        if not _TABLE_PREFIX.fullmatch(name_prefix):
            raise ValueError(
                f"table prefix {name_prefix!r}: a letter, then 2-51 letters or digits "
                "(the tables are <prefix>, <prefix>parked, <prefix>deadletters)"
            )
        self.name_prefix = name_prefix
        self._releases: TableClient = service.create_table_if_not_exists(name_prefix)
        self._parked: TableClient = service.create_table_if_not_exists(f"{name_prefix}parked")
        self._dead: TableClient = service.create_table_if_not_exists(f"{name_prefix}deadletters")
        self._etags: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: AzureSettings, credential: TokenCredential | None = None) -> TableReleaseStore:
        """The store the Function App uses: its managed identity needs "Storage Table Data Contributor"."""
        from platforms.azure.clients import credential_or_default

        service = TableServiceClient(endpoint=settings.tables_endpoint, credential=credential_or_default(credential))
        return cls(service, settings.tables_name)

    @classmethod
    def from_connection_string(cls, conn_str: str, name_prefix: str = "releases") -> TableReleaseStore:
        """For Azurite and account-key access."""
        return cls(TableServiceClient.from_connection_string(conn_str), name_prefix)

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
        self._remember(release.id, 1, metadata["etag"])
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
            self._forget(release.id, etag)
            raise ConcurrencyError(f"release {release.id} changed since version {expected}") from None
        except HttpResponseError as error:
            release.version = expected
            if error.status_code == 412:
                self._forget(release.id, etag)
                raise ConcurrencyError(f"release {release.id} changed since version {expected}") from None
            raise
        except BaseException:
            release.version = expected
            raise
        self._remember(release.id, release.version, metadata["etag"])

    def list(self, limit: int = 100, states: Iterable[str] | None = None) -> list[Release]:
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

    def _query_states(self, states: list[str]) -> Iterator[TableEntity]:
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
        self._remember(release.id, release.version, entity.metadata["etag"])
        return release

    # ---- ETags ----------------------------------------------------------------------
    def _etag_of(self, release_id: str, version: int) -> str:
        """The ETag of the stored release at ``version``; ConcurrencyError when it is at another one."""
        with self._lock:
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
        self._remember(release_id, stored, entity.metadata["etag"])
        return entity.metadata["etag"]

    def _remember(self, release_id: str, version: int, etag: str) -> None:
        with self._lock:
            known = self._etags.get(release_id)
            if known is not None and known[0] > version:
                return  # a slower read of an older version must not replace a newer one
            self._etags[release_id] = (version, etag)
            self._etags.move_to_end(release_id)
            while len(self._etags) > ETAG_CACHE_SIZE:
                self._etags.popitem(last=False)

    def _forget(self, release_id: str, etag: str) -> None:
        with self._lock:
            known = self._etags.get(release_id)
            if known is not None and known[1] == etag:
                del self._etags[release_id]

    # ---- parked events --------------------------------------------------------------
    def park(self, release_id: str, event_id: str, payload: dict[str, Any]) -> None:
        entity = {
            "PartitionKey": table_key(release_id),
            "RowKey": table_key(event_id),
            "event_id": event_id,
            "seq": next_sequence(),
            **split_json(json.dumps(payload), what=f"parked event {event_id}"),
        }
        with contextlib.suppress(ResourceExistsError):  # parked already: once per (release, event id)
            self._parked.create_entity(entity)

    def take_parked(self, release_id: str) -> list[dict[str, Any]]:
        """Oldest first. Each event is claimed with a conditional write before it is deleted, so two
        concurrent takers never both get it; one that is claimed but not deleted (the taker died)
        is taken again next time."""
        entities = list(self._parked.query_entities("PartitionKey eq @pk", parameters={"pk": table_key(release_id)}))
        entities.sort(key=lambda entity: (entity["seq"], entity["RowKey"]))
        taken: list[dict[str, Any]] = []
        for entity in entities:
            claim = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], "taken_at": next_sequence()}
            try:
                self._parked.update_entity(
                    claim,
                    mode=UpdateMode.MERGE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another taker has it
            self._parked.delete_entity(entity["PartitionKey"], entity["RowKey"])  # a delete that finds nothing is fine
            taken.append(json.loads(join_json(entity)))
        return taken

    # ---- dead letters ---------------------------------------------------------------
    def add_dead_letter(self, letter: DeadLetter) -> bool:
        payload = json.dumps(letter.payload, default=str)
        try:
            parts = split_json(payload, max_parts=MAX_PARTS - 2, what="dead letter")
        except DocumentTooLarge:  # keep the letter, and as much of the payload as fits
            cut = (MAX_PARTS - 3) * PART_CHARS // 2  # escaping the JSON as a string at most doubles it
            parts = split_json(json.dumps({"truncated": True, "json_prefix": payload[:cut]}), what="dead letter")
        entity = {
            "PartitionKey": table_key(letter.function),
            "RowKey": table_key(letter.event_id),
            "event_id": letter.event_id,
            "function": letter.function,
            "event_type": letter.event_type,
            "reason": letter.reason[:MAX_REASON_CHARS],
            "received_at": letter.received_at,
            "seq": next_sequence(),
            **parts,
        }
        try:
            self._dead.create_entity(entity)
        except ResourceExistsError:
            return False
        return True

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Newest first (sorted here: the keys are the event ids)."""
        entities = sorted(self._dead.list_entities(), key=lambda entity: entity["seq"], reverse=True)[:limit]
        return [
            DeadLetter(
                entity["event_id"],
                entity["event_type"],
                entity["function"],
                entity["reason"],
                entity["received_at"],
                json.loads(join_json(entity)),
            )
            for entity in entities
        ]


# ---- helpers ------------------------------------------------------------------------
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


def next_sequence() -> str:
    """Increasing within this process (nanoseconds since the epoch, bumped on a tie), sortable as text."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(time.time_ns(), _last_sequence + 1)
        return f"{_last_sequence:020d}"
