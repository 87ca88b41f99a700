"""How the CLI prints: stable JSON for scripts, aligned tables for people."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from usersync.errors import HostKeyError, UsersyncError
from usersync.reports import error_code

F = TypeVar("F", bound=Callable[..., Any])


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, ensure_ascii=False, default=_default))


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
    are no rows."""
    if not rows:
        if empty:
            click.echo(empty)
        return
    cells = [[_cell(v, max_width) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    styled = sys.stdout.isatty()
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    click.echo(click.style(line, bold=True) if styled else line)
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: object, max_width: int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    text = str(value)
    text = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")
    if max_width is None or len(text) <= max_width:
        return text
    return text[: max_width - 1] + "…"


def handle_errors(func: F) -> F:
    """Turn usersync's errors into a message on stderr and the contract's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UsersyncError as error:
            if kwargs.get("as_json"):
                body: dict[str, Any] = {"code": error_code(error), "message": error.message}
                if isinstance(error, HostKeyError):
                    body["fingerprint"] = error.fingerprint
                emit_json({"error": body})
            click.secho(f"usersync: {error.message}", fg="red", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("usersync: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
