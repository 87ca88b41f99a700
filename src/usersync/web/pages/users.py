"""User 360: the users of the workspace, searched and paged, and one user's properties."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
