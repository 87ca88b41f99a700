"""`usersync workspace ...`, `token ...` and `secrets rotate`: administering a database."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from usersync.backup import backup_sqlite
from usersync.cli_import import db_option, workspace_option
from usersync.cli_output import emit_json, handle_errors, iso, json_option, table
from usersync.config import load_settings
from usersync.db import describe, write_transaction
from usersync.errors import NotFound, UsageError
from usersync.files import format_size
from usersync.schema import connections, syncs
from usersync.secretbox import SecretBox, SecretKeyError
from usersync.service import open_database, workspace_id
from usersync.store import tokens, workspaces

# --- workspaces --------------------------------------------------------------------------


def _workspace_document(row: workspaces.Workspace) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "timezone": row.timezone,
        "created_at": iso(row.created_at),
    }


@click.group()
def workspace() -> None:
    """Create, list and update workspaces (the tenants of a database)."""


_ZONE_HELP = "IANA zone for its schedules and the web UI's times (default UTC)."


@workspace.command("create")
@click.argument("name")
@click.option("--timezone", "zone_name", metavar="ZONE", help=_ZONE_HELP)
@db_option
@json_option
@handle_errors
def workspace_create(name: str, zone_name: str | None, db_url: str | None, as_json: bool) -> None:
    """Create the workspace NAME."""
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = workspaces.create(engine, name, timezone=zone_name)
        row = workspaces.get(engine, ws)
    if as_json:
        emit_json(_workspace_document(row))
        return
    zone = f", time zone {row.timezone}" if row.timezone else ""
    click.echo(f"Created workspace {row.name!r} (id {row.id}{zone}).")
    click.echo(f"Give it an API token: usersync token create --workspace {shlex.quote(name)}")


@workspace.command("update")
@click.argument("name")
@click.option(
    "--timezone", "zone_name", metavar="ZONE", required=True, help="IANA zone: Europe/Berlin, say."
)
@db_option
@json_option
@handle_errors
def workspace_update(name: str, zone_name: str, db_url: str | None, as_json: bool) -> None:
    """Change the time zone of the workspace NAME ("default" is the CLI's).

    A new sync's schedule starts in it, and the web UI shows the times of the workspace's
    users, tokens, files and runs in it. Syncs keep their own zones.
    """
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = workspace_id(engine, name)
        workspaces.set_timezone(engine, ws, zone_name)
        row = workspaces.get(engine, ws)
    if as_json:
        emit_json(_workspace_document(row))
        return
    click.echo(f"Workspace {row.name!r} (id {row.id}) now uses the time zone {row.timezone}.")


@workspace.command("list")
@db_option
@json_option
@handle_errors
def workspace_list(db_url: str | None, as_json: bool) -> None:
    """List the workspaces."""
    with open_database(load_settings(db_url=db_url)) as engine:
        rows = workspaces.list_all(engine)
    if as_json:
        emit_json({"items": [_workspace_document(row) for row in rows]})
        return
    table(
        ["ID", "NAME", "TIME ZONE", "CREATED"],
        [(row.id, row.name, row.timezone or "UTC", row.created_at) for row in rows],
        empty="No workspaces yet: usersync workspace create NAME",
    )


# --- tokens ------------------------------------------------------------------------------


def _token_document(token: tokens.Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "prefix": token.prefix,
        "name": token.name,
        "created_at": iso(token.created_at),
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }


@click.group()
def token() -> None:
    """Create, list and revoke the REST API's tokens."""


@token.command("create")
@workspace_option
@click.option("--name", help="What the token is for, to recognise it in `token list`.")
@db_option
@json_option
@handle_errors
def token_create(workspace: str, name: str | None, db_url: str | None, as_json: bool) -> None:
    """Create an API token for a workspace and print it (this once only)."""
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = workspace_id(engine, workspace)
        new = tokens.create_token(engine, ws, name=name)
    if as_json:
        emit_json(
            {
                "token": new.token,
                "id": new.id,
                "workspace": workspace,
                "name": name.strip() if name else None,
                "prefix": new.token[: tokens.PREFIX_LENGTH],
            }
        )
        return
    click.echo(new.token)
    click.echo(
        f"usersync: token {new.id} for workspace {workspace!r}; it will not be shown again, "
        "store it now (use it as `Authorization: Bearer TOKEN`)",
        err=True,
    )


@token.command("list")
@workspace_option
@db_option
@json_option
@handle_errors
def token_list(workspace: str, db_url: str | None, as_json: bool) -> None:
    """List a workspace's tokens (their first characters, never the tokens)."""
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = workspace_id(engine, workspace)
        found = tokens.list_tokens(engine, ws)
    if as_json:
        emit_json({"workspace": workspace, "items": [_token_document(t) for t in found]})
        return
    table(
        ["ID", "PREFIX", "NAME", "CREATED", "LAST USED", "REVOKED"],
        [(t.id, t.prefix + "…", t.name, t.created_at, t.last_used_at, t.revoked_at) for t in found],
        empty=f"No tokens in workspace {workspace!r}: usersync token create --workspace "
        f"{shlex.quote(workspace)}",
    )


@token.command("revoke")
@click.argument("token_or_id", metavar="TOKEN_OR_ID")
@click.option("--workspace", help="Only revoke the token if it belongs to this workspace.")
@db_option
@handle_errors
def token_revoke(token_or_id: str, workspace: str | None, db_url: str | None) -> None:
    """Revoke a token, given as the token itself or its id (see `usersync token list`).

    A revoked token is refused from then on; revoking it again does nothing.
    """
    with open_database(load_settings(db_url=db_url)) as engine:
        ws = None
        if workspace is not None:
            ws = workspaces.get_id(engine, workspace)
            if ws is None:
                raise UsageError(f"there is no workspace named {workspace!r}")
        revoked = tokens.revoke(engine, token_or_id, workspace_id=ws)
    if not revoked:
        where = f" in workspace {workspace!r}" if workspace is not None else ""
        raise NotFound(
            f"there is no token {_shown(token_or_id)}{where}: give the whole token or its id "
            "(usersync token list --workspace NAME shows the ids)"
        )
    click.echo(f"Revoked token {_shown(token_or_id)}.")


def _shown(token_or_id: str) -> str:
    """A token as messages may show it: its first characters only."""
    key = token_or_id.strip()
    return key if key.isdigit() else repr(key[: tokens.PREFIX_LENGTH] + "…")


# --- secrets -----------------------------------------------------------------------------


def reseal_secrets(conn: sa.Connection, box: SecretBox) -> int:
    """Re-seal every stored secret with `box`'s first key, in the caller's transaction;
    return how many. SecretKeyError, naming the row, if a secret opens with none of its keys.
    """
    resealed = 0
    for stored, column, what in (
        (connections, connections.c.secrets, "connection"),
        (syncs, syncs.c.webhook_secret, "sync"),
    ):
        rows = conn.execute(
            sa.select(stored.c.id, column).where(column.is_not(None)).with_for_update()
        ).all()
        changes = []
        for row_id, sealed in rows:
            try:
                changes.append({"row_id": row_id, "sealed": box.rotate(sealed)})
            except SecretKeyError:
                raise SecretKeyError(
                    f"the secret of {what} {row_id} cannot be decrypted with any key in "
                    "USERSYNC_SECRET_KEY: list the new key first and the key it was saved "
                    "with after it. Nothing was re-sealed."
                ) from None
        if changes:
            conn.execute(
                sa.update(stored)
                .where(stored.c.id == sa.bindparam("row_id"))
                .values({column.name: sa.bindparam("sealed")}),
                changes,
            )
        resealed += len(changes)
    return resealed


@click.group("secrets")
def secrets_group() -> None:
    """Manage the key that encrypts stored passwords, private keys and webhook secrets."""


@secrets_group.command("rotate")
@db_option
@json_option
@handle_errors
def secrets_rotate(db_url: str | None, as_json: bool) -> None:
    """Re-encrypt every stored secret with the first key of USERSYNC_SECRET_KEY.

    Set USERSYNC_SECRET_KEY=NEW_KEY,OLD_KEY (for every usersync process), run this, then
    drop OLD_KEY. All secrets are re-sealed in one transaction, or none are.
    """
    settings = load_settings(db_url=db_url)
    if not settings.secret_key:
        raise UsageError(
            "USERSYNC_SECRET_KEY is not set: set it to NEW_KEY,OLD_KEY (the old key is in "
            f"{settings.secret_key_path} unless USERSYNC_SECRET_KEY held it) and run this again"
        )
    box = SecretBox.from_settings(settings)
    with open_database(settings) as engine, engine.connect() as conn, write_transaction(conn):
        count = reseal_secrets(conn, box)
    if as_json:
        emit_json({"resealed": count})
        return
    click.echo(f"Re-sealed {count} secret{'' if count == 1 else 's'} with the first key.")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@handle_errors
def backup(path: Path, db_url: str | None) -> None:
    """Copy the SQLite database to PATH, a new file, while usersync goes on running
    (PostgreSQL: use pg_dump)."""
    settings = load_settings(db_url=db_url)
    with open_database(settings) as engine:
        size = backup_sqlite(engine, path)
        source = describe(engine)
    click.echo(f"Backed up {source} to {path} ({format_size(size)}), readable by you only.")
    key = "USERSYNC_SECRET_KEY" if settings.secret_key else str(settings.secret_key_path)
    click.echo(
        f"Keep the secret key ({key}) too, but apart from the backups: without it the stored "
        "passwords and keys cannot be read, and whoever holds both can read them."
    )
