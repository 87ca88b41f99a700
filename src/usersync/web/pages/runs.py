"""Runs: the history of a sync's runs, and one run with its live progress and rejected rows."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
