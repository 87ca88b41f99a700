"""The sync wizard's logic without a browser: suggestions for a file's columns, the draft
carried between steps, each step's checks, and the conversion preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.datastructures import FormData, UploadFile

from usersync.enums import PropertyType
from usersync.store.syncs import Sync
from usersync.suggest import property_name_for, suggest_property, suggest_type, suggest_user_id
from usersync.web.pages import wizard_checks as checks
from usersync.web.pages.draft import ColumnChoice, Draft, not_editable

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
COLUMNS = ["User ID", "Email", "Age"]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["Email", "User ID"], "User ID"),
        (["id", "email"], "id"),
        (["email", "customer_id", "id"], "customer_id"),
        (["email", "name"], "email"),
        ([], ""),
    ],
)
def test_the_user_id_column_is_suggested_by_its_name(columns: list[str], expected: str) -> None:
    assert suggest_user_id(columns) == expected


def test_properties_are_named_after_columns_or_match_the_catalog() -> None:
    assert property_name_for("First Name") == "first_name"
    assert property_name_for("1st visit") == "_1st_visit"
    assert property_name_for("???") == "property"
    assert suggest_property("First Name", {"firstName": "string"}) == "firstName"
    assert suggest_property("E-mail", {}) == "e-mail"


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        (["42", "7", ""], PropertyType.INTEGER),
        (["3.5", "2"], PropertyType.NUMBER),
        (["00123", "00007"], PropertyType.STRING),  # leading zeros: a code, not a number
        (["yes", "No"], PropertyType.BOOLEAN),
        (["1", "0"], PropertyType.INTEGER),  # 1/0 alone are more often counts
        (["2026-01-02"], PropertyType.DATE),
        (["2026-01-02T10:00:00"], PropertyType.DATETIME),
        (["42", "abc"], PropertyType.STRING),
        (["", " "], PropertyType.STRING),
    ],
)
def test_a_type_is_suggested_only_when_every_sample_converts(
    samples: list[str], expected: PropertyType
) -> None:
    assert suggest_type(samples) is expected


SCHEDULES = [
    ({}, {"type": "once"}),
    ({"once": "at", "at": "2027-01-01T09:00"}, {"type": "once", "at": "2027-01-01T09:00"}),
    ({"frequency": "repeat", "time": "02:30"}, {"type": "daily", "time": "02:30"}),
    (
        {"frequency": "repeat", "every": "weekly", "days": ["THU", "MON"], "time": "09:30"},
        {"type": "weekly", "days": ["MON", "THU"], "time": "09:30"},
    ),
    (
        {"frequency": "repeat", "every": "monthly", "day": "31", "time": "01:00"},
        {"type": "monthly", "day": 31, "time": "01:00"},
    ),
    (
        {"frequency": "custom", "expression": " 0 0 1 * * ? "},
        {"type": "cron", "expression": "0 0 1 * * ?"},
    ),
]


def test_a_draft_survives_its_round_trip_and_a_broken_one_starts_afresh() -> None:
    draft = Draft(folder="/in", file="userdata_a.csv", days=["MON"])
    assert Draft.loads(draft.dumps()) == draft
    assert Draft.loads("{not json") == Draft()
    assert Draft.loads(None) == Draft()
    assert Draft.loads("x" * 300_000) == Draft()


def test_the_mapping_step_absorbs_its_fields_and_leaves_out_the_user_id_column() -> None:
    draft = Draft(columns=[ColumnChoice(column=c, property=c.lower()) for c in COLUMNS])
    form = FormData(
        [
            ("user_id", "User ID"),
            ("col1_use", "on"),
            ("col1_property", " work_email "),
            ("col1_type", "string"),
            ("col2_property", "age"),
            ("col2_type", "integer"),
        ]
    )

    absorbed = draft.absorb("map", form)

    assert absorbed.mapping() == {
        "user_id": "User ID",
        "properties": {"work_email": "Email"},
        "types": {"work_email": "string"},
    }


@pytest.mark.parametrize(("fields", "schedule"), SCHEDULES)
def test_the_schedule_step_gives_the_contracts_schedule(
    fields: dict[str, str | list[str]], schedule: dict[str, object]
) -> None:
    items: list[tuple[str, str | UploadFile]] = [
        (k, v)
        for k, value in fields.items()
        for v in ([value] if isinstance(value, str) else value)
    ]
    draft = Draft().absorb("schedule", FormData(items))
    assert draft.schedule() == schedule
    assert checks.check_schedule(draft, NOW, "UTC") == {}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"once": "at", "at": ""}, "at", "Choose a date and a time."),
        (
            {"once": "at", "at": "2026-11-26T12:59", "timezone": "Europe/Berlin"},
            "at",
            "That time has passed",
        ),
        ({"frequency": "repeat", "time": "25:00"}, "time", "Choose a time of day"),
        ({"frequency": "repeat", "every": "weekly"}, "days", "Choose at least one day."),
        ({"frequency": "repeat", "every": "monthly", "day": "32"}, "day", "from 1 to 31"),
        ({"frequency": "custom", "expression": "0 0/120 * * * ?"}, "expression", "120"),
        ({"frequency": "custom", "expression": "0 0 0 30 2 ?"}, "expression", "never fires"),
        ({"frequency": "custom", "expression": "0 0 0 1 1 ? 2001"}, "expression", "never fires"),
        ({"timezone": "Europe/Berln"}, "timezone", "Europe/Berlin"),
        ({"frequency": "sometimes"}, "frequency", "Choose One time"),
    ],
)
def test_schedule_errors_name_their_field(fields: dict[str, str], field: str, message: str) -> None:
    draft = Draft().absorb("schedule", FormData(list(fields.items())))
    errors = checks.check_schedule(draft, NOW, "UTC")
    assert message in errors[field], errors


def test_mapping_errors_name_their_field() -> None:
    draft = Draft(
        user_id="User ID",
        columns=[
            ColumnChoice(column="User ID", property="user_id"),
            ColumnChoice(column="Email", property="email"),
            ColumnChoice(column="Age", property="email", type="integer"),
        ],
    )
    errors = checks.check_map(draft, COLUMNS, {"email": "integer"})
    assert errors == {
        "col1_type": "email is a integer property already: choose integer, or import the "
        "column as a new property.",
        "col2_property": "Column Email feeds email already: give another name.",
    }
    unnamed = draft.model_copy(update={"user_id": "Nope", "columns": draft.columns[:2]})
    unnamed.columns[1] = ColumnChoice(column="Email", property="")
    assert checks.check_map(unnamed, COLUMNS, {}) == {
        "user_id": "Choose the column that holds the userId.",
        "col1_property": "Name the property this column feeds, or untick Import.",
    }


def test_source_errors_name_their_field() -> None:
    assert checks.check_source(Draft()) == {"folder": "Choose a folder."}
    assert checks.check_source(Draft(folder="/in")) == {"file": "Fetch the files and choose one."}
    assert "userdata_" in checks.check_source(Draft(folder="/in", file="data.csv"))["file"]
    assert checks.check_source(Draft(folder="/in", file="userdata_a.csv")) == {}
    chosen = Draft(folder="/in", file="userdata_a.csv", delimiter="tab", encoding="cp1252")
    assert checks.check_source(chosen) == {}
    assert chosen.csv_options().delimiter == "\t"
    unknown = Draft(folder="/in", file="userdata_a.csv", encoding="klingon")
    assert "unknown encoding 'klingon'" in checks.check_source(unknown)["format"]
    assert (
        "delimiter"
        in checks.check_source(Draft(folder="/in", file="userdata_a.csv", delimiter="ab"))["format"]
    )


def test_the_conversion_preview_shows_converted_values_and_refused_cells() -> None:
    draft = Draft(
        user_id="User ID",
        columns=[
            ColumnChoice(column="User ID", property="user_id"),
            ColumnChoice(column="Email", property="email"),
            ColumnChoice(column="Age", property="age", type="integer"),
        ],
    )
    sample = [(2, ["u1", "a@x", "42"]), (3, ["u2", "", "abc"]), (5, [" ", "c@x", "7"])]

    result = checks.convert_sample(draft, COLUMNS, sample, ZoneInfo("UTC"))

    assert result.properties == [("email", "string"), ("age", "integer")]
    assert result.rejected == 2
    first, second, third = result.rows
    assert (first.line, first.user_id.value, [c.value for c in first.cells]) == (
        2,
        "u1",
        ["a@x", "42"],
    )
    assert [c.problem for c in first.cells] == [None, None]
    assert second.cells[0].problem is None
    assert "'abc' is not a whole number" in (second.cells[1].problem or "")
    assert third.user_id.problem == "the userId is empty; every row needs one"
    assert checks.convert_sample(
        draft.model_copy(update={"user_id": ""}), COLUMNS, sample, ZoneInfo("UTC")
    ).problem


# The run options of a draft that chose none.
NO_OPTIONS = {
    "max_rejected": None,
    "after_import": "leave",
    "move_to": None,
    "import_unchanged": False,
    "webhook_url": None,
    "webhook_on": None,
}


def stored(**values: Any) -> Sync:
    """A sync as the store gives it back: the people file, mapped, daily at 01:00."""
    settings: dict[str, Any] = {
        "id": 7,
        "workspace_id": 1,
        "connection_id": 3,
        "name": "People",
        "folder": "/in",
        "file": "userdata_people.csv",
        "file_choice": "exact",
        "mapping": {
            "user_id": "User ID",
            "properties": {"work_email": "Email", "age": "Age"},
            "types": {"age": "integer"},
        },
        "conflict": "replace",
        "empty_cells": "ignore",
        "encoding": "cp1252",
        "delimiter": "\t",
        "max_rejected": 5,
        "schedule": {"type": "daily", "time": "01:00"},
        "timezone": "Europe/Berlin",
        "enabled": True,
        "next_run_at": None,
        "import_unchanged": False,
        "skip_unchanged_users": False,
        "after_import": "leave",
        "move_to": None,
        "webhook_url": None,
        "webhook_on": None,
        "has_webhook_secret": False,
        "created_at": NOW,
        "updated_at": NOW,
        **values,
    }
    return Sync(**settings)


@pytest.mark.parametrize(("fields", "schedule"), SCHEDULES)
def test_a_stored_sync_becomes_a_draft_that_gives_its_settings_back(
    fields: dict[str, object], schedule: dict[str, Any]
) -> None:
    sync = stored(schedule=schedule)

    draft = Draft.of_sync(sync, {"work_email": "string"})

    assert (draft.sync_id, draft.file_choice) == (7, "exact")
    assert Draft.of_sync(stored(file_choice="all_new", file=None), {}).mapping() == (
        draft.mapping() | {"types": {"work_email": "string", "age": "integer"}}
    )
    assert draft.schedule() == schedule
    assert draft.mapping() == {
        "user_id": "User ID",
        "properties": {"work_email": "Email", "age": "Age"},
        "types": {"work_email": "string", "age": "integer"},  # the catalog's type, else its own
    }
    assert (draft.path, draft.delimiter, draft.encoding) == (
        "/in/userdata_people.csv",
        "tab",
        "cp1252",
    )
    assert (draft.conflict, draft.empty_cells, draft.timezone, draft.name) == (
        "replace",
        "ignore",
        "Europe/Berlin",
        "People",
    )
    assert draft.options() == NO_OPTIONS | {"max_rejected": 5}
    hooked = stored(webhook_url="https://h.example/x", webhook_on="always", import_unchanged=True)
    assert Draft.of_sync(hooked, {}).options() == NO_OPTIONS | {
        "max_rejected": 5,
        "import_unchanged": True,
        "webhook_url": "https://h.example/x",
        "webhook_on": "always",
    }
    assert Draft.loads(draft.dumps()) == draft
    assert draft.steps()[-1] == ("review", "Save changes")
    assert Draft().steps()[-1] == ("review", "Import")


def test_a_changed_syncs_unmapped_columns_are_offered_but_not_imported() -> None:
    draft = Draft.of_sync(stored(), {})
    columns = ["User ID", "Email", "Age", "Newsletter"]

    fitted = checks.with_columns(draft, columns, [["u1", "a@x", "abc", "yes"]], {})

    assert [(c.column, c.use, c.property, c.type) for c in fitted.columns] == [
        ("User ID", False, "user_id", "string"),
        ("Email", True, "work_email", "string"),
        ("Age", True, "age", "integer"),  # kept, though "abc" would not suggest it
        ("Newsletter", False, "newsletter", "boolean"),
    ]
    assert fitted.user_id == "User ID"
    assert fitted.mapping() == draft.mapping()


def test_a_new_syncs_choices_outlast_another_file_with_some_of_the_same_columns() -> None:
    draft = checks.with_columns(Draft(), COLUMNS, [], {})
    draft = draft.model_copy(
        update={
            "columns": [
                *draft.columns[:1],
                draft.columns[1].model_copy(update={"property": "work_email"}),
                *draft.columns[2:],
            ]
        }
    )

    fitted = checks.with_columns(draft, ["Email", "User ID", "Plan"], [], {})

    assert [(c.column, c.use, c.property) for c in fitted.columns] == [
        ("Email", True, "work_email"),
        ("User ID", True, "user_id"),
        ("Plan", True, "plan"),
    ]
    assert fitted.user_id == "User ID"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({}, None),
        ({"file_choice": "newest", "file": None}, None),
        (
            {"mapping": {"user_id": "id", "properties": {"a": "email", "b": "email"}}},
            "one of its columns feeds two properties",
        ),
        (
            {"mapping": {"user_id": "id", "properties": {"customer": "id"}}},
            "one of its columns feeds two properties",
        ),
    ],
)
def test_a_sync_the_wizard_cannot_show_says_why(values: dict[str, Any], reason: str | None) -> None:
    found = not_editable(stored(**values))
    assert found == reason if reason is None else reason in (found or "")


def test_a_mapping_step_that_could_not_read_the_file_keeps_the_mapping() -> None:
    draft = Draft.of_sync(stored(), {})

    assert draft.absorb("map", FormData([("go", "back")])) == draft


@pytest.mark.parametrize(
    ("fields", "errors", "options"),
    [
        ({}, {}, NO_OPTIONS),
        (
            {"max_rejected": "0", "after_import": "move", "move_to": "/archive"},
            {},
            NO_OPTIONS | {"max_rejected": 0, "after_import": "move", "move_to": "/archive"},
        ),
        (
            {"webhook_url": " https://h.example/x\x00 ", "webhook_on": "always"},
            {},
            NO_OPTIONS | {"webhook_url": "https://h.example/x", "webhook_on": "always"},
        ),
        ({"webhook_on": "always"}, {}, NO_OPTIONS),  # no address: no webhook
        ({"import_unchanged": "on"}, {}, NO_OPTIONS | {"import_unchanged": True}),
        ({"webhook_url": "h.example/x"}, {"webhook_url": "starts with https://"}, None),
        ({"webhook_url": "https://" + "x" * 4096}, {"webhook_url": "at most 4096"}, None),
        ({"webhook_on": "sometimes"}, {"webhook_on": "Choose which runs"}, None),
        ({"max_rejected": "-1"}, {"max_rejected": "Give a whole number"}, None),
        ({"after_import": "burn"}, {"after_import": "Choose what happens"}, None),
        ({"after_import": "move", "move_to": "archive"}, {"move_to": "from the top"}, None),
        ({"after_import": "move", "move_to": "/in/"}, {"move_to": "other than the one"}, None),
    ],
)
def test_the_run_options_are_checked_and_given_as_the_store_takes_them(
    fields: dict[str, str], errors: dict[str, str], options: dict[str, object] | None
) -> None:
    form = FormData(list(fields.items()))
    draft = Draft(folder="/in", file="userdata_a.csv").absorb("review", form)

    found = checks.check_options(draft)

    assert sorted(found) == sorted(errors)
    assert all(errors[field] in found[field] for field in errors)
    if options is not None:
        assert draft.options() == options
