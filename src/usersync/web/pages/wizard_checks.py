"""The sync wizard's checks, one per step, each returning {field: message} for the fields
that need fixing (empty when the step is fine); and the conversion preview of the mapping
step: the sample rows as the import would read them, with the cells it would refuse.

Pure functions of the draft (and of the file's header, sample and property catalog), so the
pages only render what these say."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from usersync.enums import AfterImport, PropertyType, WebhookOn
from usersync.errors import UsageError, UsersyncError
from usersync.files import EXTENSION, PREFIX
from usersync.mapping import (
    ColumnMapping,
    EmptyCells,
    MappedRow,
    MappingError,
    RowMapper,
    check_property_name,
)
from usersync.reader import Row, RowError
from usersync.schedule import parse_schedule, resolve_zone
from usersync.schedule.calendar import parse_day_of_month, parse_local_datetime, parse_time
from usersync.schedule.zones import fire_instant
from usersync.store.model import ConflictMode
from usersync.store.syncs import WEBHOOK_SCHEMES
from usersync.suggest import suggest_property, suggest_type, suggest_user_id
from usersync.web.pages.draft import FILE_CHOICE_WORDS, ColumnChoice, Draft
from usersync.web.schemas import MAX_TEXT

Errors = dict[str, str]
TYPES = tuple(kind.value for kind in PropertyType)


def without_field(error: UsersyncError, name: str) -> str:
    """A message shown next to its field need not start by naming the field."""
    prefix = f"{name}: "
    return error.message[len(prefix) :] if error.message.startswith(prefix) else error.message


def check_source(draft: Draft) -> Errors:
    if not draft.folder.startswith("/"):
        return {"folder": "Choose a folder."}
    if not draft.file:
        return {"file": "Fetch the files and choose one."}
    if draft.file_choice not in FILE_CHOICE_WORDS:
        return {"file_choice": "Choose which file each run imports."}
    if "/" in draft.file or not (
        draft.file.startswith(PREFIX) and draft.file.lower().endswith(EXTENSION)
    ):
        return {"file": f"Only {PREFIX}*{EXTENSION} files can be imported."}
    try:
        draft.csv_options()
    except UsageError as error:
        return {"format": error.message}
    return {}


def with_columns(
    draft: Draft,
    columns: Sequence[str],
    samples: Sequence[Sequence[str]],
    catalog: Mapping[str, str],
) -> Draft:
    """The draft fitted to the file's header: the choices made for these columns kept (by
    name), the rest suggested (an existing property of the same name with its type, else a new
    property named after the column with a type every sample converts to). A sync being
    changed did not import the columns it has no choice for: they are suggested, not used."""
    if [c.column for c in draft.columns] == list(columns) and draft.user_id in columns:
        return draft
    made = {c.column: c for c in draft.columns}
    chosen = []
    for i, column in enumerate(columns):
        if column in made:
            chosen.append(made[column])
            continue
        name = suggest_property(column, catalog)
        kind = catalog.get(name) or suggest_type(row[i] for row in samples if i < len(row))
        chosen.append(ColumnChoice(column=column, property=name, type=kind, use=not draft.sync_id))
    user_id = draft.user_id if draft.user_id in columns else suggest_user_id(columns)
    return draft.model_copy(update={"columns": chosen, "user_id": user_id})


def check_map(draft: Draft, columns: Sequence[str], catalog: Mapping[str, str]) -> Errors:
    errors: Errors = {}
    if draft.user_id not in columns:
        errors["user_id"] = "Choose the column that holds the userId."
    fed_by: dict[str, str] = {}
    for i, choice in enumerate(draft.columns):
        if not choice.use or choice.column == draft.user_id:
            continue
        problem = _property_problem(choice, fed_by)
        if problem:
            errors[f"col{i}_property"] = problem
        else:
            fed_by[choice.property] = choice.column
        known = catalog.get(choice.property)
        if choice.type not in TYPES:
            errors[f"col{i}_type"] = f"Choose one of: {', '.join(TYPES)}."
        elif known is not None and known != choice.type:
            errors[f"col{i}_type"] = (
                f"{choice.property} is a {known} property already: choose {known}, "
                "or import the column as a new property."
            )
    return errors


def _property_problem(choice: ColumnChoice, fed_by: Mapping[str, str]) -> str | None:
    if not choice.property:
        return "Name the property this column feeds, or untick Import."
    try:
        check_property_name(choice.property)
    except UsersyncError as error:
        return error.message
    if choice.property in fed_by:
        return (
            f"Column {fed_by[choice.property]} feeds {choice.property} already: give another name."
        )
    return None


def check_conflicts(draft: Draft) -> Errors:
    if draft.conflict not in {mode.value for mode in ConflictMode}:
        return {"conflict": "Choose what happens to a user who exists already."}
    if draft.empty_cells not in {mode.value for mode in EmptyCells}:
        return {"empty_cells": "Choose what an empty cell does."}
    return {}


def check_options(draft: Draft) -> Errors:
    """The Import step's run options."""
    errors: Errors = {}
    if draft.max_rejected and not draft.max_rejected.isdigit():
        errors["max_rejected"] = "Give a whole number of rows (0 or more), or leave it empty."
    if draft.after_import not in {choice.value for choice in AfterImport}:
        errors["after_import"] = "Choose what happens to the file after its import."
    elif draft.after_import == AfterImport.MOVE.value:
        folder = draft.move_to.rstrip("/") or "/"
        if not draft.move_to.startswith("/"):
            errors["move_to"] = "Give the folder on the server, from the top: /archive, say."
        elif folder == (draft.folder.rstrip("/") or "/"):
            errors["move_to"] = "Give a folder other than the one the files come from."
    if draft.webhook_url and not draft.webhook_url.startswith(WEBHOOK_SCHEMES):
        errors["webhook_url"] = "Give an address that starts with https:// (or http://)."
    elif len(draft.webhook_url) > MAX_TEXT:
        errors["webhook_url"] = f"Give an address of at most {MAX_TEXT} characters."
    if draft.webhook_on not in {choice.value for choice in WebhookOn}:
        errors["webhook_on"] = "Choose which runs the webhook hears of."
    return errors


def check_schedule(draft: Draft, now: datetime, default_zone: str) -> Errors:
    errors: Errors = {}
    zone = _zone(draft, default_zone, errors)
    if draft.frequency == "once":
        if draft.once == "at":
            _check_at(draft.at, zone, now, errors)
        elif draft.once != "now":
            errors["once"] = "Choose Now or a date and time."
    elif draft.frequency == "repeat":
        _check_repeat(draft, errors)
    elif draft.frequency == "custom":
        try:
            schedule = parse_schedule(draft.schedule())
        except UsageError as error:
            errors["expression"] = without_field(error, "expression")
        else:
            if zone is not None and not schedule.next_times(now, 1, zone):
                errors["expression"] = (
                    "This expression never fires again (its years have passed, or its date "
                    "never comes, such as 30 February): change it, or choose One time."
                )
    else:
        errors["frequency"] = "Choose One time, Repeat or Custom."
    return errors


def _zone(draft: Draft, default_zone: str, errors: Errors) -> ZoneInfo | None:
    try:
        return resolve_zone(draft.timezone, default=default_zone)
    except UsageError as error:
        errors["timezone"] = without_field(error, "timezone")
        return None


def _check_at(at: str, zone: ZoneInfo | None, now: datetime, errors: Errors) -> None:
    try:
        moment = parse_local_datetime(at)
    except UsageError:
        errors["at"] = "Choose a date and a time."
        return
    if zone is not None and fire_instant(moment, zone)[0] <= now:
        errors["at"] = "That time has passed: choose a later one, or Now."


def _check_repeat(draft: Draft, errors: Errors) -> None:
    if draft.every not in ("daily", "weekly", "monthly"):
        errors["every"] = "Choose Daily, Weekly or Monthly."
        return
    try:
        parse_time(draft.time)
    except UsageError:
        errors["time"] = "Choose a time of day, such as 01:00."
    if draft.every == "weekly" and not draft.days:
        errors["days"] = "Choose at least one day."
    if draft.every == "monthly":
        try:
            parse_day_of_month(int(draft.day) if draft.day.isdigit() else draft.day)
        except UsageError:
            errors["day"] = "Choose a day of the month from 1 to 31."


@dataclass(frozen=True)
class Cell:
    value: str
    problem: str | None = None


@dataclass(frozen=True)
class ConvertedRow:
    line: int
    user_id: Cell
    cells: list[Cell]


@dataclass
class Conversion:
    """The sample as the mapping would import it: one column per mapped property."""

    properties: list[tuple[str, str]] = field(default_factory=list)  # (property, type)
    rows: list[ConvertedRow] = field(default_factory=list)
    problem: str | None = None

    @property
    def rejected(self) -> int:
        return sum(
            1 for row in self.rows if row.user_id.problem or any(c.problem for c in row.cells)
        )


def convert_sample(
    draft: Draft, columns: Sequence[str], sample: Sequence[tuple[int, list[str]]], zone: ZoneInfo
) -> Conversion:
    """How the sample rows would convert; unnamed or untyped properties are left out (the
    step's check names them)."""
    chosen = [
        c
        for c in draft.columns
        if c.use and c.column != draft.user_id and c.property and c.type in TYPES
    ]
    chosen = list({c.property: c for c in chosen}.values())
    if draft.user_id not in columns:
        return Conversion(problem="Choose the column that holds the userId to see the rows.")
    mapping = ColumnMapping(
        draft.user_id,
        {c.property: c.column for c in chosen},
        {c.property: PropertyType(c.type) for c in chosen},
    )
    try:
        mapper = RowMapper(mapping, columns, zone=zone, empty_cells=EmptyCells(draft.empty_cells))
    except (MappingError, ValueError) as error:
        return Conversion(problem=str(error))
    result = Conversion(properties=[(c.property, c.type) for c in chosen])
    index = {name: i for i, name in enumerate(columns)}
    for line, values in sample:
        if len(values) != len(columns):
            continue
        mapped = mapper.map(Row(line, values))
        result.rows.append(_converted(line, values, mapped, chosen, index, draft.user_id))
    return result


def _converted(
    line: int,
    values: list[str],
    mapped: MappedRow | list[RowError],
    chosen: Sequence[ColumnChoice],
    index: Mapping[str, int],
    user_id_column: str,
) -> ConvertedRow:
    if isinstance(mapped, MappedRow):
        document = json.loads(mapped.properties_json)
        cells = [Cell(_shown(document.get(c.property))) for c in chosen]
        return ConvertedRow(line, Cell(mapped.user_id), cells)
    problems = {error.column: error.message for error in mapped}
    cells = [Cell(values[index[c.column]], problems.get(c.column)) for c in chosen]
    user_id = values[index[user_id_column]]
    return ConvertedRow(line, Cell(user_id.strip(), problems.get(user_id_column)), cells)


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
