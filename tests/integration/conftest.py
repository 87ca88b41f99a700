"""Fixtures of the REST API tests: one app per module and database kind (or on SQLite alone),
and a recorder that fails the test if any answer or log line shows a secret. A module may
define its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.apiclient import (
    SECRETS,
    Api,
    Recorder,
    RunningApp,
    app_on_database,
    new_workspace,
    no_secrets_shown,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    with app_on_database(request.param, tmp_path_factory.mktemp("api"), request) as app:
        yield app


@pytest.fixture(scope="module")
def sqlite_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """One app per module on SQLite alone, for modules whose subject is not the database."""
    with app_on_database("sqlite", tmp_path_factory.mktemp("api"), request) as app:
        yield app


@pytest.fixture
def recorder(caplog: pytest.LogCaptureFixture) -> Iterator[Recorder]:
    with no_secrets_shown(caplog, *SECRETS) as recorder:
        yield recorder


@pytest.fixture
def api(running: RunningApp, recorder: Recorder) -> Api:
    """A client of `running` with a token of a fresh workspace."""
    return Api(running, new_workspace(running.engine).token, recorder)
