"""The REST API's routers, one module per resource, under /api."""

from __future__ import annotations

from fastapi import APIRouter

from usersync.web.api import connections, properties, runs, syncs, users, workspace


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api")
    for module in (connections, syncs, runs, users, properties, workspace):
        router.include_router(module.router)
    router.include_router(users.download_router)
    return router
