"""Suggestions for mapping a file's columns: which column holds the userId, which property
each column feeds (an existing one whose name matches, else a new one named after the
column), and a type that every sample value converts to. Suggestions only: the user decides.

    suggest_user_id(["Email", "User ID"])                     -> "User ID"
    suggest_property("First Name", {"first_name": "string"})  -> "first_name"
    suggest_type(["42", "7", ""])                             -> PropertyType.INTEGER
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from usersync.enums import PropertyType
from usersync.errors import UsersyncError
from usersync.mapping import check_property_name, converter_for

# Normalised column names that usually hold the userId, best first.
_USER_ID_NAMES = ("userid", "user", "uid", "externalid", "customerid", "id")
# Tried in this order: the first type that every non-empty sample converts to wins.
_WORDS = frozenset({"true", "false", "yes", "no"})  # 1/0 alone are more often counts
_GUESSES = (
    PropertyType.BOOLEAN,
    PropertyType.INTEGER,
    PropertyType.NUMBER,
    PropertyType.DATE,
    PropertyType.DATETIME,
)


def normalise(name: str) -> str:
    """A name without case, spaces or punctuation: "User ID", "user_id", "userId" agree."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def suggest_user_id(columns: Sequence[str]) -> str:
    by_name = {normalise(column): column for column in reversed(columns)}
    for wanted in _USER_ID_NAMES:
        if wanted in by_name:
            return by_name[wanted]
    return columns[0] if columns else ""


def property_name_for(column: str) -> str:
    """A valid new property name made from a column's name ("First Name" -> "first_name")."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", column.strip()).strip("_").lower()[:128]
    if not any(c.isalnum() for c in name):
        return "property"
    if not (name[0].isalpha() or name[0] == "_"):
        name = ("_" + name)[:128]
    try:
        return check_property_name(name)
    except UsersyncError:
        return "property"


def suggest_property(column: str, catalog: Mapping[str, str]) -> str:
    """The existing property whose name matches the column's, else a new name for it."""
    wanted = normalise(column)
    for name in catalog:
        if normalise(name) == wanted:
            return name
    return property_name_for(column)


def suggest_type(samples: Iterable[str]) -> PropertyType:
    """The narrowest type every non-empty sample converts to; string when there is none, or
    when a value looks like a code whose leading zeros would be lost ("00123")."""
    values = [s.strip() for s in samples if s.strip()]
    if not values:
        return PropertyType.STRING
    zone = ZoneInfo("UTC")
    for kind in _GUESSES:
        convert = converter_for(kind, zone)
        assert convert is not None
        if kind is PropertyType.BOOLEAN and not all(v.lower() in _WORDS for v in values):
            continue
        if kind in (PropertyType.INTEGER, PropertyType.NUMBER) and any(
            _leading_zero(v) for v in values
        ):
            continue
        if all(_converts(convert, v) for v in values):
            return kind
    return PropertyType.STRING


def _leading_zero(text: str) -> bool:
    digits = text.lstrip("+-")
    return len(digits) > 1 and digits[0] == "0" and digits[1].isdigit()


def _converts(convert: Callable[[str], str], text: str) -> bool:
    try:
        convert(text)
    except (ValueError, OverflowError):
        return False
    return True
