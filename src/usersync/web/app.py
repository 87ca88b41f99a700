"""The ASGI application, built by `create_app(settings)`; nothing happens at import time."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from usersync import __version__
from usersync.config import Settings

_HOME = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>usersync</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>usersync</h1>
<p>usersync {version} is running. The web wizard is on its way; meanwhile the command line
browses and previews your SFTP server:</p>
<pre>usersync folders sftp://USER@HOST/ --key ~/.ssh/id_ed25519
usersync files   sftp://USER@HOST/exports --key ~/.ssh/id_ed25519
usersync preview sftp://USER@HOST/exports/userdata_2026.csv --key ~/.ssh/id_ed25519</pre>
<p>Health: <a href="/health">/health</a></p>
</body></html>
"""


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="usersync", version=__version__)
    app.state.settings = settings

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return _HOME.format(version=__version__)

    return app
