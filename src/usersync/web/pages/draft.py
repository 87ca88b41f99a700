"""The sync wizard's draft: every choice made so far, carried from step to step in one hidden
form field (JSON), so that going back and forth loses nothing (the server keeps a copy of
each step shown only for the browser's history: `wizard_shelf`).
A draft is the user's own input: it is checked step by step, and again in full when the sync
is created.

    draft = Draft.loads(form.get("draft"))      # a broken or missing draft starts afresh
    draft = draft.absorb("map", form)           # the fields of the step the form showed
    draft.mapping(), draft.schedule()           # as store.syncs takes them
    Draft.of_sync(sync)                         # a stored sync's settings, to change them
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import FormData

from usersync.browse import DELIMITER_WORDS
from usersync.enums import AfterImport, FileChoice, PropertyType, WebhookOn
from usersync.mapping import EmptyCells
from usersync.reader import CsvOptions, delimiter_name, named_delimiter
from usersync.store.model import ConflictMode
from usersync.store.syncs import Sync

Step = Literal["source", "map", "conflicts", "schedule", "review"]
STEPS: tuple[Step, ...] = ("source", "map", "conflicts", "schedule", "review")
STEP_TITLES: dict[Step, str] = {
    "source": "Configure source",
    "map": "Map properties",
    "conflicts": "Resolve conflicts",
    "schedule": "Schedule import",
    "review": "Import",
}
FILE_CHOICE_WORDS = {
    FileChoice.EXACT.value: "The chosen file, read again each time",
    FileChoice.NEWEST.value: "The newest userdata_*.csv file in the folder at run time",
    FileChoice.ALL_NEW.value: "Every new userdata_*.csv file in the folder, oldest first, "
    "one run each",
}
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MAX_DRAFT = 200_000  # characters: a draft is a few hundred; anything larger is not ours


class ColumnChoice(BaseModel):
    """One column of the file: whether it is imported, as which property, of which type."""

    model_config = ConfigDict(extra="ignore")

    column: str
    use: bool = True
    property: str = ""
    type: str = PropertyType.STRING.value


class Draft(BaseModel):
    model_config = ConfigDict(extra="ignore")

    folder: str = ""
    file: str = ""  # the chosen file: what an "exact" sync reads, else the mapping's sample
    file_choice: str = FileChoice.EXACT.value  # which file each run reads (FileChoice)
    delimiter: str = ","  # as the API takes it: "," ";" "|" or "tab"
    encoding: str = ""  # "": UTF-8 (or UTF-16 by its byte order mark)
    user_id: str = ""
    columns: list[ColumnChoice] = []
    conflict: str = ConflictMode.UPDATE.value
    empty_cells: str = EmptyCells.IGNORE.value
    skip_unchanged_users: bool = False  # a user the file leaves as it is is not written
    frequency: str = "once"  # once | repeat | custom
    once: str = "now"  # now | at
    at: str = ""  # a local date and time, as <input type="datetime-local"> gives it
    every: str = "daily"  # daily | weekly | monthly
    time: str = "01:00"
    days: list[str] = []
    day: str = "1"
    expression: str = "0 0 1 * * ?"
    timezone: str = ""
    name: str = ""
    max_rejected: str = ""  # "": any number of rejected rows
    after_import: str = AfterImport.LEAVE.value
    move_to: str = ""  # the folder imported files move to (after_import "move")
    import_unchanged: bool = False  # a scheduled run imports a file it imported unchanged
    webhook_url: str = ""  # "": no webhook (its secret is never in a draft: see `options`)
    webhook_on: str = WebhookOn.FAILURE.value
    sync_id: int = 0  # the sync these choices change; 0 for a new one

    @classmethod
    def of_sync(cls, sync: Sync, catalog: dict[str, str]) -> Draft:
        """The settings of `sync` as the wizard shows them (see `not_editable` first). Its
        columns are the mapped ones; the map step adds the file's others, not imported."""
        mapping = sync.mapping
        types = mapping.get("types") or {}
        columns = [
            ColumnChoice(
                column=column,
                property=name,
                type=types.get(name) or catalog.get(name) or PropertyType.STRING.value,
            )
            for name, column in mapping["properties"].items()
        ]
        return cls(
            folder=sync.folder,
            file=sync.file or "",
            file_choice=sync.file_choice,
            delimiter=delimiter_name(sync.delimiter or ","),
            encoding=sync.encoding or "",
            user_id=mapping["user_id"],
            columns=columns,
            conflict=sync.conflict,
            empty_cells=sync.empty_cells,
            skip_unchanged_users=sync.skip_unchanged_users,
            timezone=sync.timezone,
            name=sync.name or "",
            max_rejected="" if sync.max_rejected is None else str(sync.max_rejected),
            after_import=sync.after_import,
            move_to=sync.move_to or "",
            import_unchanged=sync.import_unchanged,
            webhook_url=sync.webhook_url or "",
            webhook_on=sync.webhook_on or WebhookOn.FAILURE.value,
            sync_id=sync.id,
            **_schedule_fields(sync.schedule),
        )

    @classmethod
    def loads(cls, text: object) -> Draft:
        if not isinstance(text, str) or not text or len(text) > MAX_DRAFT:
            return cls()
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            return cls()

    def dumps(self) -> str:
        return self.model_dump_json()

    @property
    def path(self) -> str:
        return self.folder.rstrip("/") + "/" + self.file

    def absorb(self, step: str, form: FormData) -> Draft:
        """This draft with the fields of `step` as the form gives them."""
        reader = _ABSORB.get(step)
        return self if reader is None else self.model_copy(update=reader(form, self))

    def csv_options(self) -> CsvOptions:
        """How the file is read; UsageError for a delimiter or encoding it cannot take."""
        return CsvOptions(encoding=self.encoding or None, delimiter=named_delimiter(self.delimiter))

    @property
    def file_choices(self) -> list[tuple[str, str]]:
        """The file choices as the source step offers them: (value, words)."""
        return list(FILE_CHOICE_WORDS.items())

    @property
    def file_choice_words(self) -> str:
        """Which file each run imports, in words."""
        return FILE_CHOICE_WORDS.get(self.file_choice, self.file_choice)

    @property
    def delimiter_word(self) -> str:
        """What the delimiter is called ("semicolon"), or the delimiter itself."""
        return DELIMITER_WORDS.get(named_delimiter(self.delimiter), self.delimiter)

    def mapping(self) -> dict[str, Any]:
        used = [c for c in self.columns if c.use and c.column != self.user_id]
        return {
            "user_id": self.user_id,
            "properties": {c.property: c.column for c in used},
            "types": {c.property: c.type for c in used},
        }

    def options(self) -> dict[str, Any]:
        """The run options of the Import step, as store.syncs takes them (checked first by
        `wizard_checks.check_options`). The webhook's secret is not among them: it is read
        from the form that saves the sync, so that no page carries it back."""
        moves = self.after_import == AfterImport.MOVE.value
        return {
            "max_rejected": int(self.max_rejected) if self.max_rejected.isdigit() else None,
            "after_import": self.after_import,
            "move_to": self.move_to if moves else None,
            "import_unchanged": self.import_unchanged,
            "webhook_url": self.webhook_url or None,
            "webhook_on": self.webhook_on if self.webhook_url else None,
        }

    def schedule(self) -> dict[str, Any]:
        if self.frequency == "custom":
            return {"type": "cron", "expression": self.expression.strip()}
        if self.frequency == "repeat":
            if self.every == "weekly":
                return {"type": "weekly", "days": list(self.days), "time": self.time}
            if self.every == "monthly":
                return {"type": "monthly", "day": _whole(self.day), "time": self.time}
            return {"type": "daily", "time": self.time}
        if self.once == "at":
            return {"type": "once", "at": self.at}
        return {"type": "once"}

    @property
    def runs_now(self) -> bool:
        return self.frequency == "once" and self.once == "now"

    def steps(self) -> list[tuple[Step, str]]:
        """The wizard's steps and their titles: changing a sync ends in saving it."""
        last: dict[Step, str] = {"review": "Save changes"} if self.sync_id else {}
        return [(step, last.get(step, STEP_TITLES[step])) for step in STEPS]


def not_editable(sync: Sync) -> str | None:
    """Why the wizard cannot show `sync`'s settings (so saving them would change what it does),
    or None when it can."""
    mapping = sync.mapping
    columns = list(mapping["properties"].values())
    if mapping["user_id"] in columns or len(set(columns)) < len(columns):
        return "one of its columns feeds two properties, and the wizard maps a column once"
    return None


def _schedule_fields(schedule: dict[str, Any]) -> dict[str, Any]:
    """The schedule's fields of the form: the inverse of `Draft.schedule`."""
    kind = schedule.get("type")
    if kind == "cron":
        return {"frequency": "custom", "expression": schedule["expression"]}
    if kind in ("daily", "weekly", "monthly"):
        fields: dict[str, Any] = {"frequency": "repeat", "every": kind, "time": schedule["time"]}
        if kind == "weekly":
            fields["days"] = list(schedule["days"])
        if kind == "monthly":
            fields["day"] = str(schedule["day"])
        return fields
    if schedule.get("at"):
        return {"frequency": "once", "once": "at", "at": schedule["at"]}
    return {"frequency": "once", "once": "now"}


def _whole(text: str) -> int | str:
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else stripped


def _text(form: FormData, name: str, default: str = "") -> str:
    """The field, trimmed and without NUL characters (which no database text may hold)."""
    value = form.get(name)
    return value.replace("\x00", "").strip() if isinstance(value, str) else default


def _source(form: FormData, draft: Draft) -> dict[str, Any]:
    return {
        "folder": _text(form, "folder", draft.folder),
        "file": _text(form, "file", ""),
        "file_choice": _text(form, "file_choice", draft.file_choice),
        "delimiter": _text(form, "delimiter", draft.delimiter),
        "encoding": _text(form, "encoding", draft.encoding),
    }


def _map(form: FormData, draft: Draft) -> dict[str, Any]:
    if "user_id" not in form:  # the step could not read the file: it showed no mapping
        return {}
    columns = []
    for i, known in enumerate(draft.columns):
        columns.append(
            ColumnChoice(
                column=known.column,
                use=form.get(f"col{i}_use") is not None,
                property=_text(form, f"col{i}_property"),
                type=_text(form, f"col{i}_type", known.type),
            )
        )
    return {"user_id": _text(form, "user_id", draft.user_id), "columns": columns}


def _conflicts(form: FormData, draft: Draft) -> dict[str, Any]:
    clear = form.get("empty_cells") == EmptyCells.CLEAR.value
    return {
        "conflict": _text(form, "conflict", draft.conflict),
        "empty_cells": EmptyCells.CLEAR.value if clear else EmptyCells.IGNORE.value,
        "skip_unchanged_users": form.get("skip_unchanged_users") is not None,
    }


def _schedule(form: FormData, draft: Draft) -> dict[str, Any]:
    fields = ("frequency", "once", "at", "every", "time", "day", "expression", "timezone")
    values: dict[str, Any] = {name: _text(form, name, getattr(draft, name)) for name in fields}
    values["days"] = [d for d in WEEKDAYS if d in form.getlist("days")]
    return values


def _review(form: FormData, draft: Draft) -> dict[str, Any]:
    fields = ("name", "max_rejected", "after_import", "move_to", "webhook_url", "webhook_on")
    values: dict[str, Any] = {name: _text(form, name, getattr(draft, name)) for name in fields}
    values["import_unchanged"] = form.get("import_unchanged") is not None
    return values


_ABSORB = {
    "source": _source,
    "map": _map,
    "conflicts": _conflicts,
    "schedule": _schedule,
    "review": _review,
}
