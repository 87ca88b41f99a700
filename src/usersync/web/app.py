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

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from usersync import __version__, metrics
from usersync.config import Settings, load_settings
from usersync.demo import DemoServer
from usersync.secretbox import SecretBox
from usersync.service import open_database
from usersync.web import errors, pages
from usersync.web.api import api_router
from usersync.web.api._common import errors as error_responses
from usersync.web.auth import WorkspaceDep
from usersync.web.deps import Services, ServicesDep
from usersync.web.health import Probe, check_database
from usersync.web.schemas import Health
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
    {"name": "workspace", "description": "The workspace of the API token: its time zone."},
    {"name": "service", "description": "Health and metrics."},
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
            app.state.probe = probe = Probe(lambda: check_database(engine))
            app.state.worker = worker = (
                BackgroundWorker(settings, engine, box) if run_worker else None
            )
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
                probe.close()
                del app.state.services, app.state.demo_server, app.state.probe, app.state.worker

    app = FastAPI(
        title="usersync",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
        docs_url=None,  # served below, with Swagger UI's files from here instead of a CDN
        redoc_url=None,
    )
    errors.install(app)
    app.include_router(api_router())
    pages.install(app)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="usersync REST API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )

    @app.get(
        "/health",
        tags=["service"],
        summary="Can the server do its job?",
        description="200 when the database answers at this version's schema and the "
        "server's worker runs; 503 saying which is not ok otherwise. Needs no token.",
        response_model=Health,
        responses={503: {"model": Health, "description": "The database or the worker is not ok."}},
    )
    def health(request: Request, response: Response) -> Health:
        database = request.app.state.probe()
        worker: BackgroundWorker | None = request.app.state.worker
        running = "off" if worker is None else "running" if worker.alive else "stopped"
        ok = database == "ok" and running != "stopped"
        if not ok:
            response.status_code = 503
        return Health(
            status="ok" if ok else "unavailable",
            version=__version__,
            database=database,
            worker=running,
        )

    @app.get(
        "/metrics",
        tags=["service"],
        summary="The workspace's figures for Prometheus",
        description="Runs by sync and status, rows read, users created and updated, rows "
        "rejected, runs queued and running, each sync's state, last success and next run, and "
        "the users in the store, in Prometheus' text format. Scrape it with the token as "
        "`authorization: {credentials: TOKEN}`.",
        response_class=Response,
        responses={
            200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "The figures."},
            401: error_responses()[401],
        },
    )
    def workspace_metrics(services: ServicesDep, ws: WorkspaceDep) -> Response:
        text = metrics.render(metrics.collect(services.engine, ws))
        return Response(text, media_type=metrics.CONTENT_TYPE)

    return app
