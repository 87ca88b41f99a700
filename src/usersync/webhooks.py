"""Run webhooks: when a sync's run ends, POST a JSON summary to the sync's URL (on failure
only, or always), signed with HMAC-SHA256 so the receiver can check it came from usersync.

    X-Usersync-Signature: sha256=<hex HMAC of the raw body with the sync's webhook secret>
    X-Usersync-Event: run.finished

A webhook that is down, slow or answers an error never fails the run: the call is tried again
after a pause or two (USERSYNC_WEBHOOK_RETRY) while the failure may pass (unreachable, 429,
5xx), each failure is logged (without the secret), and the run records the last outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from usersync import __version__
from usersync.enums import RunStatus, WebhookOn
from usersync.store.runs import Run

log = logging.getLogger("usersync.webhooks")

TIMEOUT = 5.0  # seconds
SIGNATURE_HEADER = "X-Usersync-Signature"
ANSWERED = "answered"  # a Delivery's detail when the receiver answered: "answered 204"


def run_summary(run: Run) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "event": "run.finished",
        "run_id": run.id,
        "sync_id": run.sync_id,
        "status": run.status,
        "path": run.path,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "rows_read": run.rows_read,
        "users_created": run.users_created,
        "users_updated": run.users_updated,
        "users_unchanged": run.users_unchanged,
        "rows_rejected": run.rows_rejected,
        "message": run.message,
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wanted(on: str | None, run: Run) -> bool:
    """Whether `run`, ended, is reported to a webhook set to `on`. A dry run never is: it
    changed nothing that a receiver would act on."""
    if run.dry_run:
        return False
    return on == WebhookOn.ALWAYS or (on == WebhookOn.FAILURE and run.status == RunStatus.FAILED)


@dataclass(frozen=True)
class Delivery:
    """What became of one call: whether the receiver took it (2xx), and in words."""

    ok: bool
    detail: str  # "answered 204", "answered 500", "could not be reached: ..."
    retryable: bool = False  # unreachable, too slow, busy (429) or failing (5xx)


def send(
    url: str,
    secret: str | None,
    payload: dict[str, Any],
    timeout: float = TIMEOUT,
    pauses: Sequence[float] = (),
) -> Delivery:
    """`deliver`, tried again after each of `pauses` (seconds) while the call fails in a way
    that may pass (see `Delivery.retryable`); each failure is logged (without the secret).
    The detail says which attempt it was when it was not the first."""
    attempt = 0
    for pause in (0.0, *pauses):
        time.sleep(pause)
        attempt += 1
        delivery = deliver(url, secret, payload, timeout)
        if not delivery.ok:
            log.warning("webhook %s %s for run %s", url, delivery.detail, payload.get("run_id"))
        if delivery.ok or not delivery.retryable:
            break
    if attempt > 1:
        delivery = replace(delivery, detail=f"{delivery.detail} (attempt {attempt})")
    return delivery


def deliver(
    url: str, secret: str | None, payload: dict[str, Any], timeout: float = TIMEOUT
) -> Delivery:
    """POST `payload`, signed with `secret` if there is one; never raises."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"usersync/{__version__}",
        "X-Usersync-Event": str(payload.get("event", "")),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    # `timeout` bounds each read; a receiver that answers a byte at a time would hold the call
    # (and every call after it) for ever: the whole answer gets twice that, on a thread of its
    # own that is left behind to end with its socket.
    done: list[Delivery] = []
    call = threading.Thread(
        target=lambda: done.append(_post(request, timeout)), name="webhook-call", daemon=True
    )
    call.start()
    call.join(2 * timeout)
    if not done:
        return Delivery(
            False, f"could not be reached: no whole answer within {2 * timeout:g} s", retryable=True
        )
    return done[0]


def _post(request: urllib.request.Request, timeout: float) -> Delivery:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
    except urllib.error.HTTPError as error:
        busy = error.code == 429 or error.code >= 500
        return Delivery(False, f"{ANSWERED} {error.code}", retryable=busy)
    except ValueError as error:  # not a URL urllib can call: no attempt would pass
        return Delivery(False, f"could not be reached: {error}")
    except (urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        return Delivery(False, f"could not be reached: {reason}", retryable=True)
    except http.client.HTTPException as error:  # a status line or headers that are not HTTP
        return Delivery(False, f"answered, but not in HTTP: {error!r}", retryable=True)
    return Delivery(200 <= status < 300, f"{ANSWERED} {status}")


def delivered(detail: str) -> bool:
    """Whether a Delivery's recorded `detail` says the receiver took the call (2xx)."""
    return detail.startswith(f"{ANSWERED} 2")


def trial_payload(sync_id: int | None) -> dict[str, Any]:
    """A call that only shows the receiver what usersync sends (and signs)."""
    return {
        "event": "webhook.test",
        "run_id": None,
        "sync_id": sync_id,
        "message": "a test call from usersync: no run has ended",
    }
