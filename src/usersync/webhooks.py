"""Run webhooks: when a sync's run ends, POST a JSON summary to the sync's URL (on failure
only, or always), signed with HMAC-SHA256 so the receiver can check it came from usersync.

    X-Usersync-Signature: sha256=<hex HMAC of the raw body with the sync's webhook secret>
    X-Usersync-Event: run.finished

A webhook that is down, slow or answers an error never fails the run: it is logged (without
the secret) and dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from usersync import __version__
from usersync.enums import WebhookOn
from usersync.store.runs import Run

log = logging.getLogger("usersync.webhooks")

TIMEOUT = 5.0  # seconds
SIGNATURE_HEADER = "X-Usersync-Signature"


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
        "rows_rejected": run.rows_rejected,
        "message": run.message,
    }


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def wanted(on: str | None, status: str) -> bool:
    """Whether a run that ended `status` is reported to a webhook set to `on`."""
    return on == WebhookOn.ALWAYS or (on == WebhookOn.FAILURE and status == "failed")


@dataclass(frozen=True)
class Delivery:
    """What became of one call: whether the receiver took it (2xx), and in words."""

    ok: bool
    detail: str  # "answered 204", "answered 500", "could not be reached: ..."


def send(
    url: str, secret: str | None, payload: dict[str, Any], timeout: float = TIMEOUT
) -> Delivery:
    """`deliver`, and a warning in the log (without the secret) when the call failed."""
    delivery = deliver(url, secret, payload, timeout)
    if not delivery.ok:
        log.warning("webhook %s %s for run %s", url, delivery.detail, payload.get("run_id"))
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
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
    except urllib.error.HTTPError as error:
        return Delivery(False, f"answered {error.code}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        return Delivery(False, f"could not be reached: {reason}")
    return Delivery(200 <= status < 300, f"answered {status}")


def trial_payload(sync_id: int | None) -> dict[str, Any]:
    """A call that only shows the receiver what usersync sends (and signs)."""
    return {
        "event": "webhook.test",
        "run_id": None,
        "sync_id": sync_id,
        "message": "a test call from usersync: no run has ended",
    }
