import json
from zoneinfo import ZoneInfo

import pytest

from usersync.errors import UsersyncError
from usersync.mapping import (
    ColumnMapping,
    EmptyCells,
    MappedRow,
    MappingError,
    PropertyType,
    RowMapper,
    check_property_name,
)
from usersync.reader import Row, RowError

COLUMNS = ["id", "name", "age", "score", "vip", "born", "seen"]
MAPPING = ColumnMapping(
    user_id="id",
    properties={
        "name": "name",
        "age": "age",
        "score": "score",
        "vip": "vip",
        "born": "born",
        "seen": "seen",
    },
    types={
        "age": PropertyType.INTEGER,
        "score": PropertyType.NUMBER,
        "vip": PropertyType.BOOLEAN,
        "born": PropertyType.DATE,
        "seen": PropertyType.DATETIME,
    },
)


def mapped(values: list[str], **kwargs: object) -> dict[str, object]:
    result = RowMapper(MAPPING, COLUMNS, **kwargs).map(Row(7, values))  # type: ignore[arg-type]
    assert isinstance(result, MappedRow), result
    document: dict[str, object] = json.loads(result.properties_json)
    return {"user_id": result.user_id, **document}


def errors(values: list[str]) -> list[RowError]:
    result = RowMapper(MAPPING, COLUMNS, zone=ZoneInfo("Europe/Berlin")).map(Row(7, values))
    assert isinstance(result, list), result
    return result


def test_converts_every_type() -> None:
    assert mapped(
        [" u1 ", "Ann", "42", "3.5", "Yes", "2026-02-28", "2026-07-01T10:00:00+02:00"]
    ) == {
        "user_id": "u1",
        "name": "Ann",
        "age": 42,
        "score": 3.5,
        "vip": True,
        "born": "2026-02-28",
        "seen": "2026-07-01T08:00:00Z",
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("FALSE", False), ("no", False), ("1", True), ("0", False), ("YES", True)],
)
def test_booleans_in_any_case(text: str, value: bool) -> None:
    assert mapped(["u", "", "", "", text, "", ""])["vip"] is value


def test_naive_datetimes_are_read_in_the_sync_time_zone_and_stored_in_utc() -> None:
    got = mapped(["u", "", "", "", "", "", "2026-01-15 09:30"], zone=ZoneInfo("Europe/Berlin"))
    assert got["seen"] == "2026-01-15T08:30:00Z"


def test_integral_numbers_stay_integers_and_whole_floats_are_accepted_as_integers() -> None:
    got = mapped(["u", "", "7.0", "2", "", "", ""])
    assert (got["age"], got["score"]) == (7, 2)


def test_empty_cells_are_left_out_by_default_and_cleared_when_asked() -> None:
    assert mapped(["u", "", " ", "", "", "", ""]) == {"user_id": "u"}
    cleared = mapped(["u", "", "", "", "", "", ""], empty_cells=EmptyCells.CLEAR)
    assert cleared == {
        "user_id": "u",
        "name": None,
        "age": None,
        "score": None,
        "vip": None,
        "born": None,
        "seen": None,
    }


def test_strings_are_kept_as_they_are() -> None:
    assert mapped(["u", "  Ann  ", "", "", "", "", ""])["name"] == "  Ann  "


@pytest.mark.parametrize(
    ("index", "text", "column"),
    [
        (2, "4.5", "age"),
        (2, "forty", "age"),
        (3, "1,5", "score"),
        (3, "nan", "score"),
        (2, "\u0664\u0662", "age"),  # Arabic-Indic digits: Python's int() would take them
        (3, "\u0661.\u0665", "score"),
        (4, "maybe", "vip"),
        (5, "2026-02-30", "born"),
        (6, "yesterday", "seen"),
    ],
)
def test_a_value_that_does_not_convert_rejects_the_row_naming_column_and_value(
    index: int, text: str, column: str
) -> None:
    values = ["u", "", "", "", "", "", ""]
    values[index] = text
    [error] = errors(values)
    assert (error.line, error.column, error.value) == (7, column, text)
    assert repr(text) in error.message


def test_an_empty_user_id_rejects_the_row() -> None:
    [error] = errors(["  ", "Ann", "", "", "", "", ""])
    assert (error.column, error.message) == ("id", "the userId is empty; every row needs one")


def test_a_user_id_over_512_characters_rejects_the_row() -> None:
    assert mapped([" " + "é" * 512 + " ", "", "", "", "", "", ""])["user_id"] == "é" * 512
    [error] = errors(["x" * 513, "Ann", "", "", "", "", ""])
    assert (error.column, error.value) == ("id", "x" * 513)
    assert error.message == "the userId is 513 characters long; at most 512 are allowed"


def test_every_bad_cell_of_a_row_is_reported() -> None:
    assert [e.column for e in errors(["", "", "x", "y", "", "", ""])] == ["id", "age", "score"]


def test_a_mapped_column_missing_from_the_file_fails_before_any_row() -> None:
    with pytest.raises(MappingError, match=r"no column 'email'.*columns are: id, name"):
        RowMapper(ColumnMapping("id", {"email": "email"}), ["id", "name"])


def test_a_missing_column_that_differs_only_in_case_is_pointed_out() -> None:
    with pytest.raises(MappingError) as raised:
        RowMapper(ColumnMapping("id", {"email": "Email", "n": "name"}), ["id", "EMAIL", "n"])
    assert str(raised.value) == (
        "the file has no column 'Email', 'name' (names are case-sensitive: 'EMAIL' for "
        "'Email'?); its columns are: id, EMAIL, n. Fix the mapping or the file."
    )


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_header_read_as_one_column_names_the_delimiter_it_seems_to_use(delimiter: str) -> None:
    header = delimiter.join(["id", "email", "name"])
    with pytest.raises(MappingError) as raised:
        RowMapper(ColumnMapping("id", {"email": "email"}), [header])
    flag = "tab" if delimiter == "\t" else repr(delimiter)
    assert str(raised.value).endswith(
        f"The header reads as one column: the file seems separated by {delimiter!r}; "
        f"name that delimiter (--delimiter {flag}, or the sync's delimiter)."
    )


def test_a_missing_column_error_lists_at_most_50_columns() -> None:
    columns = ["id", *(f"c{i}" for i in range(1, 100_000))]
    with pytest.raises(MappingError) as raised:
        RowMapper(ColumnMapping("id", {"email": "email"}), columns)
    assert str(raised.value).endswith(
        "its columns are: id, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, "
        "c16, c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27, c28, c29, c30, c31, c32, "
        "c33, c34, c35, c36, c37, c38, c39, c40, c41, c42, c43, c44, c45, c46, c47, c48, c49 "
        "and 99,950 more. Fix the mapping or the file."
    )


def test_property_names_are_checked() -> None:
    assert check_property_name("first_name") == "first_name"
    with pytest.raises(UsersyncError, match="not a valid property name"):
        check_property_name("1st name")


def test_values_out_of_range_are_rejected_not_crashed_on() -> None:
    mapping = ColumnMapping(
        "id",
        {"t": "t", "i": "i"},
        {"t": PropertyType.DATETIME, "i": PropertyType.INTEGER},
    )
    mapper = RowMapper(mapping, ["id", "t", "i"], zone=ZoneInfo("Europe/Berlin"))
    result = mapper.map(Row(2, ["u", "0001-01-01T00:00:00", "9" * 400 + ".0"]))
    assert isinstance(result, list)
    assert [e.column for e in result] == ["t", "i"]


def test_documents_give_their_properties_in_postgresqls_jsonb_key_order() -> None:
    """Shorter names first, then by their bytes: PostgreSQL's jsonb keeps keys in this order,
    and parses a document faster that already gives them so."""
    names = ["name", "age", "b", "zz", "Zeta"]
    mapping = ColumnMapping("id", {name: name for name in names}, {"age": PropertyType.INTEGER})
    mapper = RowMapper(mapping, ["id", *names])
    result = mapper.map(Row(2, ["u", "Ann", "41", "x", "y", "z"]))
    assert isinstance(result, MappedRow)
    assert list(json.loads(result.properties_json)) == ["b", "zz", "age", "Zeta", "name"]
    assert json.loads(result.properties_json) == {
        "name": "Ann", "age": 41, "b": "x", "zz": "y", "Zeta": "z"
    }  # fmt: skip
