"""How the CLI prints: stable JSON for scripts, aligned tables for people."""

from __future__ import annotations

import functools
import json
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from usersync.db import CONNECTION_ERRORS, DatabaseLost
from usersync.errors import HostKeyError, UsersyncError
from usersync.reports import error_code

F = TypeVar("F", bound=Callable[..., Any])


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, default=_default))


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 row`, `2,501 rows`; `plural` where it is not the noun and an s."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def located(line: int, column: str | None) -> str:
    """Where a row error is: "line 5, column 'age'", or "line 5" for the whole row."""
    return f"line {line}" + (f", column {column!r}" if column else "")


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    empty: str = "",
    max_width: int | None = None,
) -> None:
    """Print rows under headers, columns aligned, cells cut at `max_width`; `empty` when there
    are no rows. On a terminal too narrow for the table, each row is printed as a record of
    `header  value` lines instead, as psql's expanded display does."""
    if not rows:
        if empty:
            click.echo(empty)
        return
    headers = [shown(header) for header in headers]
    cells = [[cell(v, max_width) for v in row] for row in rows]
    styled = sys.stdout.isatty()
    terminal = shutil.get_terminal_size().columns if styled else None
    for text, heading in layout(headers, cells, terminal):
        click.echo(click.style(text, bold=True) if styled and heading else text)


def layout(
    headers: Sequence[str], cells: Sequence[Sequence[str]], terminal: int | None
) -> list[tuple[str, bool]]:
    """The lines of a table (each with whether it is a heading): aligned columns, or records
    when the table is wider than `terminal` (None: no terminal, never too narrow). A table of
    two columns stays one: a name and a long value read better on one wrapped line."""
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    if terminal is None or len(headers) <= 2 or sum(widths) + 2 * len(widths) - 2 <= terminal:
        lines = [("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), True)]
        lines += [
            ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)), False)
            for row in cells
        ]
        return [(text.rstrip(), heading) for text, heading in lines]
    label = max(len(h) for h in headers)
    room = max(terminal - label - 2, 10)
    rule = min(label + 2 + max(widths), terminal)
    records: list[tuple[str, bool]] = []
    for n, row in enumerate(cells, start=1):
        records.append((f"-[ RECORD {n} ]".ljust(rule, "-"), True))
        records += [
            (f"{h.ljust(label)}  {_cut(c, room)}".rstrip(), False)
            for h, c in zip(headers, row, strict=True)
        ]
    return records


# Control characters but the line feed: C0, DEL and C1. From a customer's file they could
# move the cursor, retitle or clear the terminal, so they are shown as escapes instead.
_CONTROLS = {n: f"\\x{n:02x}" for n in (*range(0x20), *range(0x7F, 0xA0)) if n != 0x0A}
_CONTROLS[0x09] = "\\t"


def shown(text: str) -> str:
    """`text` safe to print on a terminal: control characters as `\\x1b` (a tab as `\\t`)."""
    return text.translate(_CONTROLS)


def cell(value: object, max_width: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, bool):  # as in the JSON and the web UI, not Python's True
        return "true" if value else "false"
    text = str(value)
    text = shown(text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎"))
    return text if max_width is None else _cut(text, max_width)


def _cut(text: str, width: int) -> str:
    """`text`, or as much of it as fits in `width` characters with "…" at the end."""
    return text if len(text) <= width else text[: width - 1] + "…"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C's KeyboardInterrupt is (see `stop_on_sigterm`)."""


def stop_on_sigterm() -> None:
    """Make SIGTERM stop a command as Ctrl-C does, through the same cleanup (a run recorded
    as interrupted, a transaction rolled back) instead of ending the process where it is."""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)


def command_name() -> str:
    """How to run usersync from the shell that started it, for the hints it prints:
    `usersync` when it is on PATH, else the path it was started by (`.venv/bin/usersync`)."""
    if shutil.which("usersync") is None and Path(sys.argv[0]).name == "usersync":
        return sys.argv[0]
    return "usersync"


def error_json(error: UsersyncError) -> dict[str, Any]:
    """An error as --json gives it: {"code", "message"} (and the offered "fingerprint" of a
    host key that was refused)."""
    body: dict[str, Any] = {"code": error_code(error), "message": error.message}
    if isinstance(error, HostKeyError):
        body["fingerprint"] = error.fingerprint
    return body


def handle_errors(func: F) -> F:
    """Turn usersync's errors into a message on stderr and the contract's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return func(*args, **kwargs)
            except CONNECTION_ERRORS as lost:
                raise DatabaseLost(lost) from lost
        except UsersyncError as error:
            if kwargs.get("as_json"):
                emit_json({"error": error_json(error)})
            click.secho(f"usersync: {shown(error.message)}", fg="red", err=True)
            sys.exit(error.exit_code)
        except Terminated:
            click.echo("usersync: stopped (SIGTERM)", err=True)
            sys.exit(128 + signal.SIGTERM)
        except KeyboardInterrupt:
            click.echo("usersync: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
