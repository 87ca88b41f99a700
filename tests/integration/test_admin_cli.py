"""Workspaces, API tokens and secret-key rotation through the `usersync` command, on SQLite and
on the real PostgreSQL server (the `db_url` fixture runs each test once per database)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine

from tests.cli import Result, usersync
from usersync import db
from usersync.config import load_settings
from usersync.schema import connections, syncs, utcnow
from usersync.schema import tokens as tokens_table
from usersync.schema import workspaces as workspaces_table
from usersync.secretbox import SecretBox, SecretKeyError
from usersync.store import tokens, workspaces

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    # An empty USERSYNC_SECRET_KEY is unset: the tests do not depend on the caller's shell.
    return {
        "USERSYNC_DATA_DIR": str(tmp_path / "data"),
        "USERSYNC_DB": db_url,
        "USERSYNC_SECRET_KEY": "",
    }


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.create_engine_for(db_url)
    db.migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.stderr
    return result


def new_token(env: dict[str, str], workspace: str = "default", *args: str) -> dict[str, Any]:
    document: dict[str, Any] = ok(
        usersync(env, "token", "create", "--workspace", workspace, "--json", *args)
    ).json()
    return document


# --- workspaces --------------------------------------------------------------------------


def test_workspace_create_and_list(env: dict[str, str]) -> None:
    created = ok(
        usersync(env, "workspace", "create", "acme", "--timezone", "Europe/Berlin", "--json")
    ).json()
    assert created["name"] == "acme"
    assert created["timezone"] == "Europe/Berlin"
    plain = ok(usersync(env, "workspace", "create", "globex"))
    assert "globex" in plain.stdout

    listed = ok(usersync(env, "workspace", "list", "--json")).json()
    assert [(w["name"], w["timezone"]) for w in listed["items"]] == [
        ("acme", "Europe/Berlin"),
        ("globex", None),
    ]
    assert listed["items"][0]["id"] == created["id"]
    table = ok(usersync(env, "workspace", "list")).stdout
    assert "acme" in table
    assert "Europe/Berlin" in table


def test_workspace_create_refuses_a_duplicate_name(env: dict[str, str]) -> None:
    ok(usersync(env, "workspace", "create", "acme"))
    again = usersync(env, "workspace", "create", "acme")
    assert again.exit_code == 2
    assert "already a workspace named 'acme'" in again.stderr
    as_json = usersync(env, "workspace", "create", "acme", "--json")
    assert as_json.exit_code == 2
    assert as_json.json()["error"]["code"] == "workspace_exists"


def test_workspace_update_changes_the_time_zone(env: dict[str, str], engine: Engine) -> None:
    ok(usersync(env, "workspace", "create", "acme"))
    changed = ok(
        usersync(env, "workspace", "update", "acme", "--timezone", "Asia/Kolkata", "--json")
    ).json()
    assert (changed["name"], changed["timezone"]) == ("acme", "Asia/Kolkata")
    acme = workspaces.get_id(engine, "acme")
    assert acme is not None
    assert workspaces.zone(engine, acme).key == "Asia/Kolkata"

    plain = ok(usersync(env, "workspace", "update", "acme", "--timezone", " Europe/Berlin "))
    assert plain.stdout == f"Workspace 'acme' (id {acme}) now uses the time zone Europe/Berlin.\n"
    listed = ok(usersync(env, "workspace", "list", "--json")).json()
    assert [(w["name"], w["timezone"]) for w in listed["items"]] == [("acme", "Europe/Berlin")]


def test_workspace_update_refuses_an_unknown_workspace_or_zone(env: dict[str, str]) -> None:
    ok(usersync(env, "workspace", "create", "acme", "--timezone", "Europe/Berlin"))
    missing = usersync(env, "workspace", "update", "acne", "--timezone", "UTC")
    assert missing.exit_code == 2
    assert "no workspace named 'acne'; create it first" in missing.stderr
    bad_zone = usersync(env, "workspace", "update", "acme", "--timezone", "Europe/Berln")
    assert bad_zone.exit_code == 2
    assert "did you mean 'Europe/Berlin'" in bad_zone.stderr
    no_zone = usersync(env, "workspace", "update", "acme")
    assert no_zone.exit_code == 2
    assert "--timezone" in no_zone.stderr
    listed = ok(usersync(env, "workspace", "list", "--json")).json()
    assert [w["timezone"] for w in listed["items"]] == ["Europe/Berlin"]


def test_a_stored_zone_the_time_zone_database_lacks_reads_as_utc(engine: Engine) -> None:
    acme = workspaces.create(engine, "acme", timezone="Europe/Berlin")
    with engine.begin() as conn:  # as a zone that a newer tz database has dropped would be
        conn.execute(sa.update(workspaces_table).values(timezone="Europe/Atlantis"))
    assert workspaces.zone(engine, acme).key == "UTC"
    [row] = workspaces.list_all(engine, workspace_id=acme)
    assert (row.timezone, row.zone.key) == ("Europe/Atlantis", "UTC")


def test_workspace_create_refuses_an_unknown_time_zone(env: dict[str, str]) -> None:
    result = usersync(env, "workspace", "create", "acme", "--timezone", "Europe/Berln")
    assert result.exit_code == 2
    assert "did you mean 'Europe/Berlin'" in result.stderr
    assert ok(usersync(env, "workspace", "list", "--json")).json() == {"items": []}


# --- tokens ------------------------------------------------------------------------------


def test_token_create_prints_the_token_once_and_stores_only_its_hash(
    env: dict[str, str], engine: Engine
) -> None:
    ok(usersync(env, "workspace", "create", "acme"))
    result = ok(usersync(env, "token", "create", "--workspace", "acme", "--name", "ci"))
    token = result.stdout.strip()
    assert token.startswith("ust_")
    assert len(token) > 40
    assert "not be shown again" in result.stderr
    assert token not in result.stderr

    with engine.connect() as conn:
        row = conn.execute(sa.select(tokens_table)).one()
    assert token not in [str(value) for value in row]
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.prefix == token[:8]
    assert row.name == "ci"
    assert tokens.authenticate(engine, token) == workspaces.get_id(engine, "acme")


def test_token_create_refuses_a_blank_or_too_long_name_without_echoing_it(
    env: dict[str, str], engine: Engine
) -> None:
    ok(usersync(env, "workspace", "create", "acme"))
    blank = usersync(env, "token", "create", "--workspace", "acme", "--name", "  ")
    long = usersync(env, "token", "create", "--workspace", "acme", "--name", "x" * 5000)

    assert blank.exit_code == 2
    assert "a token name needs a character that is not a space" in blank.stderr
    assert long.exit_code == 2
    assert "a token name has at most 200 characters; this one has 5000" in long.stderr
    assert "x" * 201 not in long.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.select(tokens_table)).all() == []


def test_token_create_json(env: dict[str, str], engine: Engine) -> None:
    ok(usersync(env, "workspace", "create", "acme"))
    created = new_token(env, "acme")
    assert created["workspace"] == "acme"
    assert isinstance(created["id"], int)
    assert tokens.authenticate(engine, created["token"]) == workspaces.get_id(engine, "acme")


def test_token_create_refuses_an_unknown_workspace_but_makes_the_default(
    env: dict[str, str], engine: Engine
) -> None:
    refused = usersync(env, "token", "create", "--workspace", "acme")
    assert refused.exit_code == 2
    assert "usersync workspace create acme" in refused.stderr
    assert refused.stdout == ""
    assert workspaces.get_id(engine, "acme") is None

    made = new_token(env)  # --workspace default
    assert made["workspace"] == "default"
    assert tokens.authenticate(engine, made["token"]) == workspaces.get_id(engine, "default")


def test_token_list_shows_prefixes_never_the_tokens(env: dict[str, str]) -> None:
    ok(usersync(env, "workspace", "create", "acme"))
    first = new_token(env, "acme", "--name", "ci")
    second = new_token(env, "acme")
    new_token(env)  # another workspace's: not listed

    listed = ok(usersync(env, "token", "list", "--workspace", "acme", "--json"))
    items = listed.json()["items"]
    assert [(t["id"], t["prefix"], t["name"]) for t in items] == [
        (first["id"], first["token"][:8], "ci"),
        (second["id"], second["token"][:8], None),
    ]
    assert all(t["revoked_at"] is None and t["last_used_at"] is None for t in items)
    assert set(items[0]) == {"id", "prefix", "name", "created_at", "last_used_at", "revoked_at"}
    plain = ok(usersync(env, "token", "list", "--workspace", "acme")).stdout
    for text in (listed.stdout, plain):
        assert first["token"] not in text
        assert second["token"] not in text


def test_token_revoke_by_id_or_by_token(env: dict[str, str], engine: Engine) -> None:
    by_id, by_token, kept = new_token(env), new_token(env), new_token(env)

    ok(usersync(env, "token", "revoke", str(by_id["id"])))
    ok(usersync(env, "token", "revoke", by_token["token"], "--workspace", "default"))

    assert tokens.authenticate(engine, by_id["token"]) is None
    assert tokens.authenticate(engine, by_token["token"]) is None
    assert tokens.authenticate(engine, kept["token"]) is not None
    items = ok(usersync(env, "token", "list", "--json")).json()["items"]
    assert [t["revoked_at"] is not None for t in items] == [True, True, False]
    # Revoking again is allowed and keeps the first time.
    ok(usersync(env, "token", "revoke", str(by_id["id"])))
    assert ok(usersync(env, "token", "list", "--json")).json()["items"] == items


def test_token_revoke_refuses_an_unknown_token_or_another_workspace(
    env: dict[str, str], engine: Engine
) -> None:
    ok(usersync(env, "workspace", "create", "acme"))
    token = new_token(env)

    for args in (["12345"], ["ust_nope"], [str(token["id"]), "--workspace", "acme"]):
        result = usersync(env, "token", "revoke", *args)
        assert result.exit_code == 2, args
        assert "there is no token" in result.stderr
    assert usersync(env, "token", "revoke", "1", "--workspace", "nope").exit_code == 2
    assert tokens.authenticate(engine, token["token"]) is not None


def test_authenticate_refuses_unknown_and_malformed_tokens(engine: Engine) -> None:
    ws = workspaces.get_or_create(engine, "default")
    new = tokens.create_token(engine, ws)
    assert tokens.authenticate(engine, new.token) == ws
    assert tokens.authenticate(engine, new.token + "x") is None
    assert tokens.authenticate(engine, new.token[:-1]) is None
    assert tokens.authenticate(engine, "ust_" + "A" * 43) is None
    assert tokens.authenticate(engine, "") is None
    assert tokens.authenticate(engine, "ust_" + "A" * 10_000) is None
    assert new.token not in repr(new)


def test_authenticate_records_last_use_at_most_once_a_minute(engine: Engine) -> None:
    ws = workspaces.get_or_create(engine, "default")
    new = tokens.create_token(engine, ws)

    def last_used() -> Any:
        (token,) = tokens.list_tokens(engine, ws)
        return token.last_used_at

    assert last_used() is None
    tokens.authenticate(engine, new.token)
    first = last_used()
    assert first is not None
    tokens.authenticate(engine, new.token)
    assert last_used() == first  # within the minute: not written again

    earlier = utcnow() - timedelta(minutes=5)
    with engine.begin() as conn:
        conn.execute(sa.update(tokens_table).values(last_used_at=earlier))
    tokens.authenticate(engine, new.token)
    assert last_used() > earlier + timedelta(minutes=4)


def test_tokens_are_kept_per_workspace(engine: Engine) -> None:
    acme = workspaces.create(engine, "acme")
    globex = workspaces.create(engine, "globex")
    token = tokens.create_token(engine, acme, name="ci")
    assert tokens.authenticate(engine, token.token) == acme
    assert tokens.list_tokens(engine, globex) == []
    assert not tokens.revoke(engine, str(token.id), workspace_id=globex)
    assert tokens.revoke(engine, token.token, workspace_id=acme)
    assert tokens.authenticate(engine, token.token) is None


# --- secrets -----------------------------------------------------------------------------


def _id(value: int | None) -> int:
    assert value is not None
    return value


def _insert_secrets(engine: Engine, box: SecretBox) -> tuple[int, int]:
    """A connection with sealed secrets and a sync with a sealed webhook secret, plus a
    connection and a sync without any; the ids of the two with secrets."""
    ws = workspaces.get_or_create(engine, "default")
    now = utcnow()

    def connection(conn: sa.Connection, name: str, secrets: str | None) -> int:
        return _id(
            conn.scalar(
                sa.insert(connections)
                .values(
                    workspace_id=ws,
                    name=name,
                    kind="sftp",
                    host="files.example.com",
                    port=22,
                    username="alice",
                    secrets=secrets,
                    created_at=now,
                    updated_at=now,
                )
                .returning(connections.c.id)
            )
        )

    def sync(conn: sa.Connection, connection_id: int, webhook_secret: str | None) -> int:
        return _id(
            conn.scalar(
                sa.insert(syncs)
                .values(
                    workspace_id=ws,
                    connection_id=connection_id,
                    folder="/exports",
                    file="userdata_a.csv",
                    file_choice="exact",
                    mapping={"user_id": "userId", "properties": {}, "types": {}},
                    conflict="update",
                    empty_cells="ignore",
                    schedule={"type": "daily", "time": "01:00"},
                    timezone="UTC",
                    enabled=True,
                    import_unchanged=False,
                    after_import="leave",
                    webhook_secret=webhook_secret,
                    created_at=now,
                    updated_at=now,
                )
                .returning(syncs.c.id)
            )
        )

    with engine.begin() as conn:
        sealed = box.seal({"password": "pw-1", "private_key": "K"})
        with_secrets = connection(conn, "with", sealed)
        without = connection(conn, "without", None)
        hooked = sync(conn, with_secrets, box.seal({"webhook_secret": "hook-1"}))
        sync(conn, without, None)
    return with_secrets, hooked


def _stored(engine: Engine) -> tuple[list[str | None], list[str | None]]:
    with engine.connect() as conn:
        secrets = conn.scalars(sa.select(connections.c.secrets).order_by("id")).all()
        hooks = conn.scalars(sa.select(syncs.c.webhook_secret).order_by("id")).all()
    return list(secrets), list(hooks)


def test_secrets_rotate_reseals_with_the_new_key(env: dict[str, str], engine: Engine) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_box = SecretBox.from_settings(load_settings({"USERSYNC_SECRET_KEY": old}))
    new_box = SecretBox.from_settings(load_settings({"USERSYNC_SECRET_KEY": new}))
    _insert_secrets(engine, old_box)
    before = _stored(engine)

    rotated = ok(usersync({**env, "USERSYNC_SECRET_KEY": f"{new},{old}"}, "secrets", "rotate"))
    assert "Re-sealed 2 secrets" in rotated.stdout

    (sealed, empty), (hook, no_hook) = _stored(engine)
    assert empty is None
    assert no_hook is None
    assert sealed is not None
    assert hook is not None
    assert [sealed, hook] != [before[0][0], before[1][0]]
    assert new_box.open(sealed) == {"password": "pw-1", "private_key": "K"}
    assert new_box.open(hook) == {"webhook_secret": "hook-1"}
    with pytest.raises(SecretKeyError):
        old_box.open(sealed)

    again = ok(usersync({**env, "USERSYNC_SECRET_KEY": new}, "secrets", "rotate", "--json"))
    assert again.json() == {"resealed": 2}


def test_secrets_rotate_changes_nothing_when_a_secret_opens_with_no_key(
    env: dict[str, str], engine: Engine
) -> None:
    old, new, other = (Fernet.generate_key().decode() for _ in range(3))
    _insert_secrets(engine, SecretBox.from_settings(load_settings({"USERSYNC_SECRET_KEY": old})))
    before = _stored(engine)

    result = usersync({**env, "USERSYNC_SECRET_KEY": f"{new},{other}"}, "secrets", "rotate")
    assert result.exit_code == 2
    assert "connection" in result.stderr
    assert "Nothing was re-sealed" in result.stderr
    assert _stored(engine) == before


def test_secrets_rotate_needs_the_key_variable(env: dict[str, str]) -> None:
    result = usersync(env, "secrets", "rotate")
    assert result.exit_code == 2
    assert "USERSYNC_SECRET_KEY" in result.stderr


def test_secrets_rotate_with_nothing_stored(env: dict[str, str]) -> None:
    key = Fernet.generate_key().decode()
    result = ok(usersync({**env, "USERSYNC_SECRET_KEY": key}, "secrets", "rotate", "--json"))
    assert result.json() == {"resealed": 0}


def test_the_stored_workspace_zone_is_the_canonical_name(
    env: dict[str, str], engine: Engine
) -> None:
    ok(usersync(env, "workspace", "create", "acme", "--timezone", " Asia/Tokyo "))
    with engine.connect() as conn:
        zone = conn.scalar(
            sa.select(workspaces_table.c.timezone).where(workspaces_table.c.name == "acme")
        )
    assert zone == "Asia/Tokyo"


# --- backup -----------------------------------------------------------------------------


def test_a_backup_is_the_databases_committed_state_while_a_write_is_in_progress(
    env: dict[str, str], engine: Engine, db_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "backups" / "usersync-2026-11-27.db"
    out.parent.mkdir()
    assert usersync(env, "workspace", "create", "acme").exit_code == 0

    if engine.dialect.name != "sqlite":
        refused = usersync(env, "backup", str(out))
        assert refused.exit_code == 2
        assert "back up PostgreSQL with its own tools, e.g. pg_dump" in refused.stderr
        assert not out.exists()
        return
    # As an import in the middle of its transaction, holding the write lock.
    with engine.connect() as writer, db.write_transaction(writer) as transaction:
        writer.execute(sa.insert(workspaces_table).values(name="uncommitted"))
        made = usersync(env, "backup", str(out))
        transaction.rollback()

    assert made.exit_code == 0, made.stderr
    assert f"to {out} (" in made.stdout
    assert "Keep the secret key (" in made.stdout
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    copy = db.create_engine_for(f"sqlite:///{out}")
    try:
        with copy.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            names = conn.scalars(sa.select(workspaces_table.c.name)).all()
    finally:
        copy.dispose()
    assert "acme" in names
    assert "uncommitted" not in names
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no partial file left


def test_a_backup_never_replaces_a_file(tmp_path: Path) -> None:
    env = {"USERSYNC_DATA_DIR": str(tmp_path / "data"), "USERSYNC_DB": ""}  # the embedded one
    out = tmp_path / "usersync.db.bak"
    out.write_text("an older backup")

    again = usersync(env, "backup", str(out))
    nowhere = usersync(env, "backup", str(tmp_path / "missing" / "b.db"))

    assert again.exit_code == 2
    assert f"{out} already exists: a backup never replaces a file" in again.stderr
    assert out.read_text() == "an older backup"
    assert nowhere.exit_code == 2
    assert f"there is no folder {tmp_path / 'missing'}" in nowhere.stderr
