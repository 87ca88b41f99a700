"""How the CLI lays out a table: aligned columns, or one record per row when the terminal is
too narrow for them."""

from __future__ import annotations

from datetime import UTC, datetime

from usersync.cli_output import cell, layout

HEADERS = ["LINE", "userId", "email"]
CELLS = [["2", "u1", "ann@example.com"], ["3", "u2", "bob@example.com"]]


def texts(terminal: int | None) -> list[str]:
    return [text for text, _ in layout(HEADERS, CELLS, terminal)]


def test_columns_when_they_fit_or_there_is_no_terminal() -> None:
    table = [
        "LINE  userId  email",
        "2     u1      ann@example.com",
        "3     u2      bob@example.com",
    ]
    assert texts(None) == table
    assert texts(80) == table
    assert texts(len(table[1])) == table
    assert [heading for _, heading in layout(HEADERS, CELLS, 80)] == [True, False, False]


def test_records_when_the_terminal_is_narrower_than_the_table() -> None:
    assert texts(28) == [
        "-[ RECORD 1 ]----------",
        "LINE    2",
        "userId  u1",
        "email   ann@example.com",
        "-[ RECORD 2 ]----------",
        "LINE    3",
        "userId  u2",
        "email   bob@example.com",
    ]
    assert [heading for _, heading in layout(HEADERS, CELLS, 28)][:2] == [True, False]


def test_a_record_cuts_a_value_longer_than_the_terminal() -> None:
    lines = texts(20)
    assert "email   ann@example…" in lines
    assert all(len(line) <= 20 for line in lines)


def test_an_empty_cell_leaves_its_name_alone() -> None:
    text = [t for t, _ in layout(["a", "b", "c"], [["", "x" * 30, "z"]], 20)]
    assert text == ["-[ RECORD 1 ]-------", "a", "b  " + "x" * 16 + "…", "c  z"]


def test_two_columns_stay_a_table_however_narrow() -> None:
    lines = [t for t, _ in layout(["PROPERTY", "VALUE"], [["notes", "y" * 50]], 20)]
    assert lines == ["PROPERTY  VALUE", "notes     " + "y" * 50]


def test_cells_show_values_as_the_json_and_the_web_ui_do() -> None:
    moment = datetime(2026, 11, 27, 10, 49, 12, 975931, tzinfo=UTC)
    assert [cell(True), cell(False), cell(None), cell(42), cell(moment)] == [
        "true",
        "false",
        "",
        "42",
        "2026-11-27 10:49:12 UTC",
    ]
