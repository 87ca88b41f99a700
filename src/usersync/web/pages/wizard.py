"""The sync wizard, after "Sync on": step 1, Configure source (`wizard_steps` routes to it).
A folder tree whose "+" loads subfolders lazily (htmx swaps in a fragment), "Fetch files" for
the eligible files of the chosen folder (with how many were hidden, and why), and "Preview
file"."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from usersync.browse import (
    DELIMITER_WORDS,
    PREVIEW_ROWS,
    list_files,
    list_folders,
    preview_file,
)
from usersync.errors import UsersyncError
from usersync.files import FileListing, explain, newest_first
from usersync.reader import NOT_UTF8
from usersync.sources.base import Source
from usersync.store import connections
from usersync.web.api._common import RemotePath, ResourceId
from usersync.web.deps import Services, ServicesDep
from usersync.web.pages.draft import Draft
from usersync.web.pages.render import render
from usersync.web.pages.runs import workspace_times
from usersync.web.pages.session import Session, SessionDep

router = APIRouter(prefix="/integrations/{connection_id}/sync")


def node_id(path: str) -> str:
    """An HTML id for a folder of the tree (paths may hold any character)."""
    return "f-" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]


def source_page(
    request: Request,
    services: Services,
    session: Session,
    connection_id: int,
    draft: Draft,
    errors: dict[str, str],
) -> HTMLResponse:
    """Step 1, with the folder and file of `draft` chosen (when it has them)."""
    connection = connections.get(services.engine, services.box, session.workspace_id, connection_id)
    problem = None
    folders = []
    listing = None
    home = ""
    try:
        with services.connect(session.workspace_id, connection_id) as source:
            folders = list_folders(source, "/").folders
            if draft.folder.startswith("/"):
                listing = _files_to_pick(source, draft.folder, services.settings.max_file_size)
            else:  # a new sync: its folder is first the account's home, as file clients open
                home = source.start_folder()
                draft = draft.model_copy(update={"folder": home})
    except UsersyncError as failed:
        problem = failed.message
    return render(
        request,
        "wizard_source.html",
        502 if problem else (422 if errors else 200),
        session=session,
        connection=connection,
        folders=folders,
        error=problem,
        node_id=node_id,
        draft=draft,
        home=home,
        errors=errors,
        listing=listing,
        reasons=_reasons(listing, services.settings.max_file_size) if listing else [],
        step="source",
        steps=draft.steps(),
        **workspace_times(services, session),
    )


def _files_to_pick(source: Source, folder: str, max_size: int) -> FileListing:
    """The folder's files for "Select file": the newest first, as the latest export is the
    one a sync is usually made from (and a folder may hold years of daily ones)."""
    listing = list_files(source, folder, max_size)
    return dataclasses.replace(listing, files=newest_first(listing.files))


def _reasons(listing: FileListing, max_size: int) -> list[tuple[str, int]]:
    """Why files were hidden, with how many for each reason."""
    return sorted(Counter(explain(hidden.reason, max_size) for hidden in listing.hidden).items())


@router.get("/folders", response_class=HTMLResponse, include_in_schema=False)
def subfolders(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: SessionDep,
    path: RemotePath,
) -> HTMLResponse:
    """The folders inside `path`, as the items of its (so far empty) sub-list."""
    try:
        with services.connect(session.workspace_id, connection_id) as source:
            folders = list_folders(source, path).folders
    except UsersyncError as failed:
        return render(request, "_problem.html", message=failed.message)
    return render(
        request,
        "_folders.html",
        connection_id=connection_id,
        folders=folders,
        node_id=node_id,
        parent=path,
    )


@router.get("/files", response_class=HTMLResponse, include_in_schema=False)
def files(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: SessionDep,
    folder: Annotated[str, Query(max_length=4096)] = "",
) -> HTMLResponse:
    """The "Select file" list: the chosen folder's eligible files, and a note of the rest."""
    if not folder.startswith("/"):
        return render(request, "_problem.html", message="Choose a folder first.")
    max_size = services.settings.max_file_size
    try:
        with services.connect(session.workspace_id, connection_id) as source:
            listing = _files_to_pick(source, folder, max_size)
    except UsersyncError as failed:
        return render(request, "_problem.html", message=failed.message)
    return render(
        request,
        "_files.html",
        listing=listing,
        reasons=_reasons(listing, max_size),
        draft=Draft(),
        **workspace_times(services, session),
    )


@router.get("/preview", response_class=HTMLResponse, include_in_schema=False)
def preview(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: SessionDep,
    folder: Annotated[str, Query(max_length=4096)] = "",
    file: Annotated[str, Query(max_length=4096)] = "",
    delimiter: Annotated[str, Query(max_length=8)] = ",",
    encoding: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """The header and the first rows of the chosen file, as a table; and a hint: which
    delimiter the file seems to use when they make a single column, or to choose the encoding
    when the file is not UTF-8."""
    if not folder.startswith("/") or not file or "/" in file:
        return render(request, "_problem.html", message="Fetch the files and choose one first.")
    draft = Draft(folder=folder, file=file, delimiter=delimiter, encoding=encoding)
    max_size = services.settings.max_file_size
    try:
        options = draft.csv_options()
        with services.connect(session.workspace_id, connection_id) as source:
            result = preview_file(source, draft.path, options, rows=PREVIEW_ROWS, max_size=max_size)
    except UsersyncError as failed:
        return render(
            request, "_problem.html", message=failed.message, hint=_encoding_hint(failed.message)
        )
    hint = _delimiter_hint(result.other_delimiter) or _encoding_hint(
        " ".join(error.message for error in result.errors)
    )
    return render(request, "_preview.html", path=draft.path, preview=result, hint=hint)


def _encoding_hint(message: str) -> str | None:
    if NOT_UTF8 not in message:
        return None
    return (
        "Choose the file's encoding above: files saved by Excel on Windows are usually "
        "Windows-1252."
    )


def _delimiter_hint(other: str | None) -> str | None:
    if other is None:
        return None
    word = DELIMITER_WORDS[other]
    return (
        f"The rows look separated by {word}s: choose {word.capitalize()} as the delimiter, "
        "then preview again."
    )
