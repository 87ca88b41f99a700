"""The ASGI application (the web UI, the REST API under /api), built by
`create_app(settings)`; nothing happens at import time.

    app = create_app(settings)                    # `usersync serve` runs it with uvicorn
    with TestClient(create_app(settings, run_worker=False)) as client: ...

Starting the app (its lifespan) opens and migrates the database, opens the secret box,
starts a background worker (scheduler + runner) and the demo SFTP server (once `usersync
demo` has set it up: see usersync.demo); stopping it lets the run in progress finish, stops
the demo server, then closes the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from usersync import __version__
from usersync.config import Settings, load_settings
from usersync.demo import DemoServer
from usersync.secretbox import SecretBox
from usersync.service import open_database
from usersync.web import errors, pages
from usersync.web.api import api_router
from usersync.web.deps import Services
from usersync.worker import BackgroundWorker

_DESCRIPTION = """Keep a User 360 profile store in sync with `userdata_*.csv` files on SFTP.

Every endpoint but `/health` needs `Authorization: Bearer TOKEN` (`usersync token create
--workspace NAME` prints one); a token sees only its own workspace. Lists answer
`{"items": [...], "next": CURSOR|null}`: pass `next` as `after` for the next page. Errors
answer `{"error": {"code", "message"}}`.
"""

_TAGS = [
    {"name": "connections", "description": "SFTP accounts; test, confirm the host key, browse."},
    {"name": "syncs", "description": "What to import from where, how and when."},
    {"name": "runs", "description": "Executions of syncs, with progress and rejected rows."},
    {"name": "users", "description": "The User 360 store."},
    {"name": "properties", "description": "The property catalog: names and types."},
    {"name": "service", "description": "Health."},
]


def create_app(settings: Settings | None = None, *, run_worker: bool = True) -> FastAPI:
    """The web UI and REST API over `settings` (default: from the environment). With
    `run_worker`, the app also runs the scheduler and the runs while it is up."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with open_database(settings) as engine:
            box = SecretBox.from_settings(settings)
            app.state.services = Services(settings, engine, box)
            worker = BackgroundWorker(settings, engine, box) if run_worker else None
            if worker is not None:
                worker.start()
            app.state.demo_server = demo_server = DemoServer(settings)
            demo_server.start()
            try:
                yield
            finally:
                if worker is not None:
                    worker.stop()  # its run in progress may be reading from the demo server
                demo_server.stop()
                del app.state.services, app.state.demo_server

    app = FastAPI(
        title="usersync",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(api_router())
    pages.install(app)

    @app.get("/health", tags=["service"], summary="Is the server up?")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
