"""Where the sync wizard keeps each step it is to show, between the form's POST and the GET it
redirects to (Post/Redirect/Get): so the browser's Back, Forward and Reload move between the
steps, as they were, instead of asking to send a form again.

    token = shelf.keep(place, "map", draft, errors)   # a step's form was posted
    kept = shelf.take(token, place)                   # the GET: None if gone, or not this place

A kept step is the draft as it was then, and its errors; it never holds a secret (a draft has
none) nor the file's rows (the map step reads them again). In the server's memory: the pages
are served by one process (`usersync serve`; workers serve none), and a kept step need not
outlive it, since the draft also travels in every form. A step that is gone (the server
restarted, or thousands of steps were shown since) starts the wizard again, saying why.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request

from usersync.web.pages.draft import Draft, Step
from usersync.web.pages.wizard_checks import Errors

Place = tuple[int, int]  # (workspace id, connection id): a step is shown only there

MOST_STEPS = 2_000
MOST_CHARACTERS = 32_000_000  # of drafts' text: at most 200,000 each, a few hundred usually


@dataclass(frozen=True)
class KeptStep:
    place: Place
    step: Step
    draft_json: str
    errors: Errors

    @property
    def draft(self) -> Draft:
        return Draft.loads(self.draft_json)


class WizardShelf:
    """The steps last kept, the oldest forgotten first once there are too many of them."""

    def __init__(self, most_steps: int = MOST_STEPS, most_characters: int = MOST_CHARACTERS):
        self._most_steps = most_steps
        self._most_characters = most_characters
        self._kept: OrderedDict[str, KeptStep] = OrderedDict()
        self._characters = 0
        self._lock = threading.Lock()  # the pages' routes run on worker threads

    def keep(self, place: Place, step: Step, draft: Draft, errors: Errors) -> str:
        kept = KeptStep(place, step, draft.dumps(), dict(errors))
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._kept[token] = kept
            self._characters += len(kept.draft_json)
            while len(self._kept) > self._most_steps or self._characters > self._most_characters:
                _, oldest = self._kept.popitem(last=False)
                self._characters -= len(oldest.draft_json)
        return token

    def take(self, token: str, place: Place) -> KeptStep | None:
        """The step kept as `token` for `place`; it stays kept (Back may come to it again)."""
        with self._lock:
            kept = self._kept.get(token)
            if kept is None or kept.place != place:
                return None
            self._kept.move_to_end(token)  # in use: forgotten last
            return kept


def wizard_shelf(request: Request) -> WizardShelf:
    """The app's shelf, which `usersync.web.pages.install` made."""
    shelf = getattr(request.app.state, "wizard_shelf", None)
    if not isinstance(shelf, WizardShelf):
        raise RuntimeError("the web UI's pages are not installed in this app")
    return shelf
