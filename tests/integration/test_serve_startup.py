"""What `usersync serve` says as it starts: its data, its address, and how to sign in; on
the very first start, a token of the default workspace, shown once."""

from __future__ import annotations

import re
from pathlib import Path

from tests.syncs import settings_for
from usersync import db
from usersync.cli import startup_lines
from usersync.store import tokens, workspaces

TOKEN_LINE = re.compile(r"^sign in with this token \(shown once, keep it\): (ust_\S+)$")


def test_the_first_start_prints_a_token_of_the_default_workspace_once(
    tmp_path: Path, db_url: str
) -> None:
    settings = settings_for(tmp_path / "data", db_url)
    engine = db.create_engine_for(db_url)
    try:
        db.migrate(engine)
        first = startup_lines(settings, engine, "http://127.0.0.1:8000/")
        again = startup_lines(settings, engine, "http://127.0.0.1:8000/")

        assert "listening on http://127.0.0.1:8000/  (Ctrl-C stops it)" in first
        [token] = [m.group(1) for line in first if (m := TOKEN_LINE.match(line))]
        default = workspaces.get_id(engine, "default")
        assert default is not None
        assert tokens.authenticate(engine, token) == default
        assert not any(TOKEN_LINE.match(line) for line in again)
        assert "sign in with a token from: usersync token create --workspace default" in again
        assert token not in "\n".join(again)
        assert [t.name for t in tokens.list_tokens(engine, default)] == ["first sign-in"]
        if "@" in db_url:  # PostgreSQL: the password never shows
            password = db_url.split("//", 1)[1].split("@", 1)[0].partition(":")[2]
            assert not password or password not in "\n".join(first)
    finally:
        engine.dispose()


def test_a_workspace_that_had_a_token_gets_no_new_one(tmp_path: Path, db_url: str) -> None:
    settings = settings_for(tmp_path / "data", db_url)
    engine = db.create_engine_for(db_url)
    try:
        db.migrate(engine)
        ws = workspaces.get_or_create(engine, "default")
        revoked = tokens.create_token(engine, ws, name="old")
        tokens.revoke(engine, revoked.token)

        lines = startup_lines(settings, engine, "http://127.0.0.1:8000/")

        assert not any(TOKEN_LINE.match(line) for line in lines)
        assert len(tokens.list_tokens(engine, ws)) == 1
    finally:
        engine.dispose()
