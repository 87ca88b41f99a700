r"""A batch of `ChangeColumns` as PostgreSQL COPY text, made column-wise by pyarrow.

COPY's text format: one line per row, its fields separated by tabs; in a field, a backslash,
a tab, a line feed and a carriage return are written as `\\`, `\t`, `\n` and `\r`. Nothing
else needs escaping: no field is NULL, and no line is `\.` (a backslash is always doubled).
The user ids and documents are UTF-8, as the connection's client encoding is.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from usersync.store.model import ChangeColumns

_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))  # backslash first


def copy_text(batch: ChangeColumns, first_seq: int) -> Any:
    """The batch's rows, `seq<TAB>user_id<TAB>properties<LF>`, `seq` counting from
    `first_seq`, as one buffer."""
    rows = len(batch)
    seq = pc.cast(pa.array(range(first_seq, first_seq + rows), pa.int64()), pa.string())
    lines = pc.binary_join_element_wise(
        seq, _escaped(batch.user_ids), _escaped(batch.documents), "\t"
    )
    one_list = pa.ListArray.from_arrays(pa.array([0, rows], pa.int32()), lines)
    return pc.binary_join(one_list, "\n")[0].as_buffer().to_pybytes() + b"\n"


def _escaped(texts: Any) -> Any:
    texts = texts.cast(pa.string())
    for special, escape in _ESCAPES:
        texts = pc.replace_substring(texts, special, escape)
    return texts
