"""What both bulk back ends learn about the changes while staging them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

import pyarrow.compute as pc

from usersync.store.model import Change, ChangeColumns


@dataclass(frozen=True)
class Staged:
    rows: int  # staged changes (a user id given 3 times counts 3)
    nulls: bool  # some change may hold a null (clear) value


def has_nulls(batch: Sequence[Change]) -> bool:
    """Whether a change of the batch may hold a JSON null.

    A substring test: a string value containing "null" answers yes too, which only costs a
    cleanup statement that finds nothing to do.
    """
    if isinstance(batch, ChangeColumns):  # pyarrow searches the documents where they are
        return bool(pc.any(pc.match_substring(batch.documents, "null")).as_py())
    # One C-level search over the joined batch: half the cost of a test per change.
    return _NULL.search("\x00".join(map(_properties_json, batch))) is not None


_NULL = re.compile("null")
_properties_json = itemgetter(1)
