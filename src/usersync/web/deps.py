"""Typed dependencies of the API's handlers: the services the app opened at startup."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from usersync.config import Settings
from usersync.connectivity import open_connection
from usersync.secretbox import SecretBox
from usersync.sources.base import Source


@dataclass(frozen=True)
class Services:
    """What the app's lifespan opened: settings, the database and the secret box."""

    settings: Settings
    engine: Engine
    box: SecretBox

    def connect(self, ws: int, connection_id: int) -> closing[Source]:
        """Open the connection's source (`with` closes it): NotFound, HostKeyNotConfirmed
        or a SourceError if it cannot be opened."""
        return closing(open_connection(self.settings, self.engine, self.box, ws, connection_id))


def services(request: Request) -> Services:
    found = getattr(request.app.state, "services", None)
    if not isinstance(found, Services):
        raise RuntimeError("the app is not started: serve it, or enter its TestClient")
    return found


ServicesDep = Annotated[Services, Depends(services)]
