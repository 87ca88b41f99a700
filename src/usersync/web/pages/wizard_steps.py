"""The sync wizard's steps: Configure source (its folder tree and files: `wizard`), Map
properties, Resolve conflicts, Schedule import and Import. Every step's form posts to one
address with the draft so far, the step it showed and where to go ("next", "back" or a step's
name); a step is checked before the wizard moves on, and shown again with its errors next to
their fields when it is not right. The step to show is kept (`wizard_shelf`) and the POST
redirects to it, so that the browser's Back, Forward and Reload never send a form again.

    GET  /integrations/{id}/sync/new            Configure source, for a new sync
    GET  /integrations/{id}/sync/new?step=T     the step kept as T
    POST /integrations/{id}/sync/new            a step's form: redirects to the next (or
                                                another) step, or to it again with its errors
    POST /integrations/{id}/sync/new/convert    the mapping's conversion preview (htmx)
    POST /integrations/{id}/sync/new/when       the schedule's description, next fire times
    POST /integrations/{id}/sync/new/webhook-test   a test call to the webhook (htmx)
    POST /integrations/{id}/sync/new/import     create the sync (or save the changes of the
                                                draft's sync); land on its run (or runs)
    GET  /syncs/{id}/edit                       a sync's settings, in the wizard's summary
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from usersync import runqueue, webhooks
from usersync.browse import PREVIEW_ROWS, preview_file
from usersync.errors import Conflict, UsageError, UsersyncError
from usersync.schedule import parse_schedule, resolve_zone
from usersync.schedule.zones import known_zones
from usersync.store import connections, properties, syncs, workspaces
from usersync.store.syncs import SyncNotFound
from usersync.web.api._common import ResourceId
from usersync.web.api.syncs import check_sync
from usersync.web.deps import Services, ServicesDep
from usersync.web.pages import wizard_checks as checks
from usersync.web.pages.draft import STEPS, WEEKDAYS, Draft, Step, not_editable
from usersync.web.pages.render import render
from usersync.web.pages.session import FormSessionDep, Session, SessionDep
from usersync.web.pages.wizard import source_page
from usersync.web.pages.wizard_shelf import WizardShelf, wizard_shelf
from usersync.web.schemas import MAX_TEXT

router = APIRouter(prefix="/integrations/{connection_id}/sync/new")

NEXT_TIMES = 5
MAX_SAMPLE = 50_000  # characters of the sample rows a form may carry back


@dataclass(frozen=True)
class Wizard:
    """What every step's page needs besides its own values."""

    request: Request
    services: Services
    session: Session
    connection_id: int

    @property
    def ws(self) -> int:
        return self.session.workspace_id

    def go_to(
        self, shelf: WizardShelf, step: Step, draft: Draft, errors: checks.Errors
    ) -> Response:
        """Redirect to `step` of `draft`, with `errors` next to their fields (kept on `shelf`)."""
        token = shelf.keep((self.ws, self.connection_id), step, draft, errors)
        return RedirectResponse(
            f"/integrations/{self.connection_id}/sync/new?step={token}", status_code=303
        )

    @cached_property
    def workspace(self) -> workspaces.Workspace:
        """Read once per request: each step's checks and page ask for its zone."""
        return workspaces.get(self.services.engine, self.ws)

    def default_zone(self) -> str:
        return self.workspace.zone.key

    def set_zone(self) -> str:
        """The zone set for the workspace, which a new schedule starts in; "" if none was set
        (the page then offers the browser's own)."""
        return self.workspace.timezone or ""

    def zone(self, draft: Draft) -> ZoneInfo:
        try:
            return resolve_zone(draft.timezone, default=self.default_zone())
        except UsageError:
            return ZoneInfo("UTC")

    def page(self, step: Step, draft: Draft, errors: checks.Errors, **context: Any) -> HTMLResponse:
        connection = connections.get(
            self.services.engine, self.services.box, self.ws, self.connection_id
        )
        return render(
            self.request,
            f"wizard_{step}.html",
            422 if errors else 200,
            session=self.session,
            connection=connection,
            step=step,
            steps=draft.steps(),
            draft=draft,
            errors=errors,
            **context,
        )


async def _form(request: Request) -> FormData:
    return await request.form()


# The routes are plain functions, run on worker threads: they reach the database and the
# file server, which must not hold up the server's event loop.
FormDep = Annotated[FormData, Depends(_form)]
ShelfDep = Annotated[WizardShelf, Depends(wizard_shelf)]
GONE = (
    "That step of the wizard is no longer kept (usersync was restarted since, or many other "
    "steps were shown): choose the folder and the file again."
)


def _posted(
    request: Request,
    services: Services,
    session: Session,
    connection_id: int,
    form: FormData,
    step: Step,
) -> tuple[Wizard, Draft]:
    """The wizard, and the posted draft with `step`'s fields as the form gives them."""
    wizard = Wizard(request, services, session, connection_id)
    return wizard, Draft.loads(form.get("draft")).absorb(step, form)


def _step_named(name: object) -> Step | None:
    return next((step for step in STEPS if step == name), None)


def _neighbour(step: Step, offset: int) -> Step:
    return STEPS[max(0, min(len(STEPS) - 1, STEPS.index(step) + offset))]


def _check(wizard: Wizard, step: Step, draft: Draft) -> tuple[Draft, checks.Errors]:
    """The step's errors (the map step also learns the file's header again)."""
    if step == "source":
        return draft, checks.check_source(draft)
    if step == "map":
        try:
            columns, _, catalog = _file_columns(wizard, draft)
        except UsersyncError as failed:
            return draft, {"form": failed.message}
        return draft, checks.check_map(draft, columns, catalog)
    if step == "conflicts":
        return draft, checks.check_conflicts(draft)
    if step == "schedule":
        return draft, checks.check_schedule(draft, datetime.now(UTC), wizard.default_zone())
    return draft, {}


def _file_columns(
    wizard: Wizard, draft: Draft
) -> tuple[list[str], list[tuple[int, list[str]]], dict[str, str]]:
    """The chosen file's header and first rows, and the workspace's property catalog."""
    if not draft.file:  # a sync made through the API that reads the folder's newest file
        raise UsageError("Choose a file in Configure source first: its columns are mapped.")
    settings = wizard.services.settings
    with wizard.services.connect(wizard.ws, wizard.connection_id) as source:
        preview = preview_file(
            source,
            draft.path,
            draft.csv_options(),
            rows=PREVIEW_ROWS,
            max_size=settings.max_file_size,
        )
    sample = [(row.line, list(row.values)) for row in preview.rows]
    return list(preview.columns), sample, properties.types(wizard.services.engine, wizard.ws)


def show(wizard: Wizard, step: Step, draft: Draft, errors: checks.Errors) -> Response:
    """Step `step` of `draft`, with `errors` next to their fields."""
    if step == "source":
        return source_page(
            wizard.request, wizard.services, wizard.session, wizard.connection_id, draft, errors
        )
    if step == "map":
        return _map_page(wizard, draft, errors)
    if step == "schedule":
        return wizard.page(step, draft, errors, **_schedule_context(wizard, draft))
    if step == "review":
        return wizard.page(step, draft, errors, **_review_context(wizard, draft))
    return wizard.page(step, draft, errors)


def _map_page(wizard: Wizard, draft: Draft, errors: checks.Errors) -> Response:
    try:
        columns, sample, catalog = _file_columns(wizard, draft)
    except UsersyncError as failed:
        return wizard.page("map", draft, {"form": failed.message}, columns=[], file_problem=True)
    draft = checks.with_columns(draft, columns, [values for _, values in sample], catalog)
    return wizard.page(
        "map",
        draft,
        errors,
        columns=columns,
        catalog=catalog,
        samples=_column_samples(columns, sample),
        sample_json=json.dumps(sample),
        conversion=checks.convert_sample(draft, columns, sample, wizard.zone(draft)),
        types=checks.TYPES,
    )


def _column_samples(columns: list[str], sample: list[tuple[int, list[str]]]) -> list[str]:
    """A first non-empty value of each column, to show beside its name."""
    found = []
    for i in range(len(columns)):
        values = [row[i].strip() for _, row in sample if i < len(row) and row[i].strip()]
        found.append(values[0] if values else "")
    return found


def _times(draft: Draft, zone: ZoneInfo) -> tuple[str, list[datetime]]:
    schedule = parse_schedule(draft.schedule())
    if draft.runs_now:
        return schedule.describe(), []
    return schedule.describe(), schedule.next_times(datetime.now(UTC), NEXT_TIMES, zone)


def _schedule_context(wizard: Wizard, draft: Draft) -> dict[str, Any]:
    return {
        "zones": known_zones(),
        "weekdays": WEEKDAYS,
        "default_zone": wizard.default_zone(),
        "workspace_zone": wizard.set_zone(),
        **_when(wizard, draft),
    }


def _when(wizard: Wizard, draft: Draft) -> dict[str, Any]:
    """The schedule in words and its next fire times, or what is wrong with it."""
    errors = checks.check_schedule(draft, datetime.now(UTC), wizard.default_zone())
    if errors:
        return {
            "when_problem": next(iter(errors.values())),
            # Weekly with no day yet: a choice still to make, not a mistake to show in red.
            "when_incomplete": set(errors) <= {"days"},
            "description": None,
            "times": [],
        }
    zone = wizard.zone(draft)
    description, times = _times(draft, zone)
    return {"when_problem": None, "description": description, "times": times, "zone": zone.key}


def _review_context(wizard: Wizard, draft: Draft) -> dict[str, Any]:
    catalog = properties.types(wizard.services.engine, wizard.ws)
    mapped = [c for c in draft.columns if c.use and c.column != draft.user_id]
    # A sync being changed: whether it is on, and whether it has a webhook secret.
    stored = syncs.get(wizard.services.engine, wizard.ws, draft.sync_id) if draft.sync_id else None
    return {"mapped": mapped, "catalog": catalog, "stored": stored, **_when(wizard, draft)}


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def kept_step(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: SessionDep,
    shelf: ShelfDep,
    step: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The step kept as `step` (see `Wizard.go_to`); without one, Configure source."""
    wizard = Wizard(request, services, session, connection_id)
    if step is None:
        return show(wizard, "source", Draft(), {})
    kept = shelf.take(step, (wizard.ws, connection_id))
    if kept is None:
        return show(wizard, "source", Draft(), {"form": GONE})
    return show(wizard, kept.step, kept.draft, kept.errors)


@router.post("", include_in_schema=False)
def step(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    shelf: ShelfDep,
    form: FormDep,
) -> Response:
    current = _step_named(form.get("step")) or "source"
    wizard, draft = _posted(request, services, session, connection_id, form, current)
    go = form.get("go", "next")
    if go == "back":
        return wizard.go_to(shelf, _neighbour(current, -1), draft, {})
    earlier = _step_named(go)
    if earlier is not None and STEPS.index(earlier) <= STEPS.index(current):
        return wizard.go_to(shelf, earlier, draft, {})  # "Change": back to an earlier step
    draft, errors = _check(wizard, current, draft)
    if errors:
        return wizard.go_to(shelf, current, draft, errors)
    return wizard.go_to(shelf, _neighbour(current, 1), draft, {})


@router.post("/convert", response_class=HTMLResponse, include_in_schema=False)
def convert(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    form: FormDep,
) -> HTMLResponse:
    wizard, draft = _posted(request, services, session, connection_id, form, "map")
    columns = [c.column for c in draft.columns]
    conversion = checks.convert_sample(draft, columns, _sample(form), wizard.zone(draft))
    return render(request, "_conversion.html", conversion=conversion, draft=draft)


def _sample(form: FormData) -> list[tuple[int, list[str]]]:
    text = form.get("sample")
    if not isinstance(text, str) or len(text) > MAX_SAMPLE:
        return []
    try:
        rows = json.loads(text)
        return [(int(line), [str(v) for v in values]) for line, values in rows]
    except (ValueError, TypeError):
        return []


@router.post("/when", response_class=HTMLResponse, include_in_schema=False)
def when(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    form: FormDep,
) -> HTMLResponse:
    wizard, draft = _posted(request, services, session, connection_id, form, "schedule")
    return render(request, "_when.html", draft=draft, **_when(wizard, draft))


@router.post("/webhook-test", response_class=HTMLResponse, include_in_schema=False)
def webhook_test(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    form: FormDep,
) -> HTMLResponse:
    """Send the webhook a test call, signed with the typed secret (or the sync's stored one),
    and say what became of it."""
    wizard, draft = _posted(request, services, session, connection_id, form, "review")
    problem = checks.check_options(draft).get("webhook_url")
    if not draft.webhook_url:
        problem = "Give the webhook's address first."
    if problem:
        return render(request, "_webhook_test.html", problem=problem, delivery=None)
    secret, errors = _webhook_secret(form, draft)
    if errors:
        return render(request, "_webhook_test.html", problem=errors["webhook_secret"])
    signing = secret["webhook_secret"] if secret else _stored_secret(wizard, draft)
    payload = webhooks.trial_payload(draft.sync_id or None)
    delivery = webhooks.deliver(draft.webhook_url, signing, payload)
    return render(
        request, "_webhook_test.html", problem=None, delivery=delivery, signed=bool(signing)
    )


def _stored_secret(wizard: Wizard, draft: Draft) -> str | None:
    if not draft.sync_id:
        return None
    services = wizard.services
    return syncs.webhook_secret(services.engine, services.box, wizard.ws, draft.sync_id)


@router.post("/import", include_in_schema=False)
def create(
    request: Request,
    connection_id: ResourceId,
    services: ServicesDep,
    session: FormSessionDep,
    shelf: ShelfDep,
    form: FormDep,
) -> Response:
    wizard, draft = _posted(request, services, session, connection_id, form, "review")
    ws = session.workspace_id
    values: dict[str, Any] = {
        "name": draft.name or None,
        "folder": draft.folder,
        "file": draft.file or None,
        "file_choice": draft.file_choice,
        "delimiter": draft.delimiter,
        "encoding": draft.encoding or None,
        "mapping": draft.mapping(),
        "conflict": draft.conflict,
        "empty_cells": draft.empty_cells,
        "skip_unchanged_users": draft.skip_unchanged_users,
        "schedule": draft.schedule(),
        "timezone": draft.timezone or None,
        **draft.options(),
    }
    secret, errors = _webhook_secret(form, draft)
    errors = checks.check_options(draft) | errors
    values.update(secret)
    if errors:
        return wizard.go_to(shelf, "review", draft, _retype(form, errors))
    # "Save and check the file": the new sync stays off, and a dry run checks its file.
    check_first = not draft.sync_id and form.get("check_first") == "true"
    try:
        if draft.sync_id:
            sync_id = _save(services, ws, connection_id, draft.sync_id, values)
        else:
            values.update(connection_id=connection_id, enabled=not check_first)
            check_sync(services, ws, values)
            sync_id = syncs.create(services.engine, services.box, ws, values).id
    except UsageError as error:
        return wizard.go_to(shelf, "review", draft, _retype(form, {"form": error.message}))
    if check_first:
        checking = runqueue.enqueue(services.engine, ws, sync_id, dry_run=True)
        return RedirectResponse(f"/runs/{checking}", status_code=303)
    if draft.runs_now:
        run_id = runqueue.fire_if_due(services.engine, ws, sync_id)
        if run_id is not None and not draft.sync_id:
            return RedirectResponse(f"/runs/{run_id}", status_code=303)
    return RedirectResponse(f"/runs?sync={sync_id}", status_code=303)


def _webhook_secret(form: FormData, draft: Draft) -> tuple[dict[str, Any], checks.Errors]:
    """The webhook's secret as the saving form gives it, as the store takes it (no draft or
    page ever holds it): the typed one; none (for a changed sync: removed, or with the
    webhook's address gone); or, for a changed sync, nothing, to keep the one it has."""
    typed = form.get("webhook_secret")
    secret = typed if isinstance(typed, str) and typed else None
    if secret is not None and not draft.webhook_url:
        return {}, {"webhook_secret": "A secret signs the webhook's calls: give its address."}
    if secret is not None and len(secret) > MAX_TEXT:
        return {}, {"webhook_secret": f"Give at most {MAX_TEXT} characters."}
    keeps = draft.sync_id and draft.webhook_url and form.get("webhook_secret_remove") is None
    return ({} if secret is None and keeps else {"webhook_secret": secret}), {}


def _retype(form: FormData, errors: checks.Errors) -> checks.Errors:
    """`errors`, and where a secret was typed, that it must be typed again: the page shown
    with the errors does not carry it."""
    if not form.get("webhook_secret") or "webhook_secret" in errors:
        return errors
    return {**errors, "webhook_secret": "Type the secret again: the page does not keep it."}


def _save(
    services: Services, ws: int, connection_id: int, sync_id: int, values: dict[str, Any]
) -> int:
    """Change the sync to `values` (its other settings and its Sync on stay as they are)."""
    current = syncs.get(services.engine, ws, sync_id)
    if current.connection_id != connection_id:
        raise SyncNotFound(f"sync {sync_id} does not read from connection {connection_id}")
    check_sync(services, ws, {**syncs.settings_of(current), **values})
    return syncs.update(services.engine, services.box, ws, sync_id, values).id


edit_router = APIRouter(prefix="/syncs/{sync_id}")


@edit_router.get("/edit", response_class=HTMLResponse, include_in_schema=False)
def edit(
    request: Request, sync_id: ResourceId, services: ServicesDep, session: SessionDep
) -> Response:
    """The sync's settings as the wizard's last step shows them, each with its "Change"."""
    ws = session.workspace_id
    sync = syncs.get(services.engine, ws, sync_id)
    why = not_editable(sync)
    if why is not None:
        raise Conflict(
            f"this sync cannot be changed here: {why}. Change it through the REST API "
            f"(PATCH /api/syncs/{sync.id})."
        )
    draft = Draft.of_sync(sync, properties.types(services.engine, ws))
    return show(Wizard(request, services, session, sync.connection_id), "review", draft, {})
