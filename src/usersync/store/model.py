"""The store's value types: what goes in (`UserChange`), what comes out (`UserRecord`)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, overload

from sqlalchemy.engine import Connection

from usersync.errors import UsersyncError


class StoreError(UsersyncError):
    """The database failed while applying changes; nothing was applied (exit 5).

    `transient` when trying again later may work: connection lost, database busy or full.
    """

    exit_code = 5


class ConflictMode(enum.StrEnum):
    """What an imported row does to a user that exists already (see CONTRACT "Conflict modes")."""

    UPDATE = "update"  # merge: given values overwrite, null clears, other properties stay
    REPLACE = "replace"  # the record becomes exactly the given object (nulls dropped)


class UserChange(NamedTuple):
    """One accepted row: a user id and a JSON object text of its properties.

    In UPDATE mode a null value clears the property; keys that are absent are left alone
    (UPDATE) or end up absent (REPLACE). The text is trusted to be a JSON object: the mapper
    writes it. A NamedTuple rather than a dataclass: it is built once per row of a 200 MB file
    and handed to the database driver as is (a frozen dataclass costs ~1 µs more per row).
    """

    user_id: str
    properties_json: str


# What UserStore.apply takes: a UserChange, or any (user_id, properties_json) pair (a
# column-wise reader may hand over its tuples without building UserChanges).
Change = tuple[str, str]


class ChangeColumns(Sequence[Change]):
    """A batch of changes as two Arrow string arrays of one length: `user_ids` and `documents`
    (the JSON object texts), as the column-wise reader makes them. PostgreSQL's COPY writes
    them as they are, with no Python object per row; anything else reads the batch as
    (user_id, properties_json) pairs, made on first use."""

    __slots__ = ("_pairs", "documents", "user_ids")

    def __init__(self, user_ids: Any, documents: Any) -> None:
        if len(user_ids) != len(documents):
            raise ValueError("user_ids and documents must have the same length")
        self.user_ids = user_ids
        self.documents = documents
        self._pairs: list[Change] | None = None

    def __len__(self) -> int:
        return len(self.user_ids)

    @overload
    def __getitem__(self, index: int) -> Change: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Change]: ...
    def __getitem__(self, index: int | slice) -> Change | Sequence[Change]:
        return self.pairs()[index]

    def __iter__(self) -> Iterator[Change]:
        return iter(self.pairs())

    def pairs(self) -> list[Change]:
        if self._pairs is None:
            ids, documents = self.user_ids.to_pylist(), self.documents.to_pylist()
            self._pairs = list(zip(ids, documents, strict=True))
        return self._pairs


BeforeCommit = Callable[[Connection], None]
"""Called in the apply's transaction just before it commits (not for a dry run); raising
rolls the whole apply back. The worker checks there that the run is still its own."""


@dataclass(frozen=True)
class ApplyCounts:
    """Distinct user ids an apply created, those that existed and were updated, and, when it
    skipped unchanged users, those that existed and that the file left as they were (without
    skipping, these are among `updated`)."""

    created: int
    updated: int
    unchanged: int = 0


@dataclass(frozen=True)
class UserRecord:
    """One user as stored; times are aware UTC datetimes."""

    user_id: str
    properties: dict[str, Any]
    created_at: datetime
    updated_at: datetime
