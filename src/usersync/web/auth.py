"""Bearer tokens: every endpoint but /health needs `Authorization: Bearer TOKEN`, and sees only
the workspace the token belongs to (`usersync token create --workspace NAME` makes one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from usersync.store import tokens
from usersync.web.deps import ServicesDep
from usersync.web.errors import ApiError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: `usersync token create --workspace NAME` prints one.",
)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def current_workspace(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> int:
    """The id of the workspace whose token the request carries; 401 without a valid one."""
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized",
            "send an API token as `Authorization: Bearer TOKEN`; "
            "`usersync token create --workspace NAME` prints one",
            _CHALLENGE,
        )
    workspace = tokens.authenticate(services.engine, credentials.credentials)
    if workspace is None:
        raise ApiError(
            401,
            "invalid_token",
            "the API token is not valid: it is unknown or was revoked",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return workspace


WorkspaceDep = Annotated[int, Depends(current_workspace)]
