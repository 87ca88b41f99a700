"""What `usersync serve` says as it starts: its data, its address, and how to sign in; on
the very first start, a token of the default workspace, shown once."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli import usersync
from tests.servers import free_port
from tests.syncs import settings_for
from tests.worker_procs import wait_for
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


def test_serve_on_an_address_in_use_says_so_before_starting(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = usersync(
            {"USERSYNC_DATA_DIR": str(tmp_path / "data")}, "serve", "--port", str(port)
        )

    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port} (Address already in use)" in result.stderr
    assert "listening on" not in result.stdout


def test_with_json_logs_the_server_and_its_worker_write_one_json_object_a_line(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("USERSYNC_")},
        "USERSYNC_DATA_DIR": str(tmp_path / "data"),
        "USERSYNC_LOG_FORMAT": "json",
    }
    with (tmp_path / "stderr").open("w+") as stderr:
        server = subprocess.Popen(
            [sys.executable, "-m", "usersync", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}/health"
            wait_for("the server to answer", lambda: _answers(url), timeout=60)
            wait_for(
                "its access log", lambda: "/health" in Path(stderr.name).read_text(), timeout=10
            )
        finally:
            server.terminate()
            stdout, _ = server.communicate(timeout=30)
        entries = [json.loads(line) for line in Path(stderr.name).read_text().splitlines()]

    assert f"listening on http://127.0.0.1:{port}/" in stdout  # what a person reads: stdout
    by_logger = {(entry["logger"], entry["level"]) for entry in entries}
    assert ("usersync.worker", "INFO") in by_logger  # the app's lines too, not only uvicorn's
    assert any(
        entry["logger"] == "uvicorn.access" and '"GET /health HTTP/1.1" 200' in entry["message"]
        for entry in entries
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
