"""Webhook calls against a real HTTP receiver on loopback: the body, its signature, and what
a call that fails says."""

from __future__ import annotations

import json
import socketserver
import threading
import time

from tests.hooks import signature, webhook_receiver
from usersync import webhooks


def test_a_call_is_signed_and_says_what_the_receiver_answered() -> None:
    with webhook_receiver() as hook:
        delivery = webhooks.deliver(hook.url, "s3cret", webhooks.trial_payload(7))
        headers, body = hook.next_call()

    assert delivery == webhooks.Delivery(ok=True, detail="answered 204")
    assert json.loads(body) == {
        "event": "webhook.test",
        "run_id": None,
        "sync_id": 7,
        "message": "a test call from usersync: no run has ended",
    }
    assert headers["X-Usersync-Signature"] == signature("s3cret", body)
    assert headers["X-Usersync-Event"] == "webhook.test"


def test_an_unsigned_call_has_no_signature() -> None:
    with webhook_receiver() as hook:
        assert webhooks.deliver(hook.url, None, webhooks.trial_payload(None)).ok
        headers, _ = hook.next_call()

    assert "X-Usersync-Signature" not in headers


def test_an_error_answer_and_a_refused_connection_fail_saying_why(closed_port: int) -> None:
    with webhook_receiver(500) as hook:
        answered = webhooks.deliver(hook.url, None, webhooks.trial_payload(None))
    refused = webhooks.deliver(
        f"http://127.0.0.1:{closed_port}/hook", None, webhooks.trial_payload(None)
    )

    assert answered == webhooks.Delivery(ok=False, detail="answered 500", retryable=True)
    assert not refused.ok
    assert refused.detail.startswith("could not be reached: ")
    assert "refused" in refused.detail.lower()


def test_a_failing_call_is_tried_again_while_the_failure_may_pass(closed_port: int) -> None:
    payload = webhooks.trial_payload(None)
    with webhook_receiver(503, 500, 204) as hook:
        third = webhooks.send(hook.url, None, payload, pauses=(0, 0, 0))
        calls = hook.pending()
    with webhook_receiver(404, 204) as hook:
        refused = webhooks.send(hook.url, None, payload, pauses=(0, 0))
        not_again = hook.pending()
    with webhook_receiver(500) as hook:
        given_up = webhooks.send(hook.url, None, payload, pauses=(0,))
    unreachable = webhooks.send(f"http://127.0.0.1:{closed_port}/", None, payload, pauses=(0,))

    assert third == webhooks.Delivery(ok=True, detail="answered 204 (attempt 3)")
    assert len(calls) == 3
    assert [c[1] for c in calls] == [calls[0][1]] * 3  # the same body each time
    assert (refused.ok, refused.detail, len(not_again)) == (False, "answered 404", 1)
    assert (given_up.ok, given_up.detail) == (False, "answered 500 (attempt 2)")
    assert unreachable.detail.endswith("(attempt 2)")


def test_a_receiver_that_never_finishes_answering_is_given_up_on() -> None:
    # A byte every 0.1 s: each read is quick, so only a bound on the whole answer ends it.
    with webhook_receiver(drip=0.1) as hook:
        result = webhooks.deliver(hook.url, None, {"event": "run.finished"}, timeout=0.5)

    assert result.ok is False
    assert result.retryable is True
    assert result.detail == "could not be reached: no whole answer within 1 s"


def test_a_receiver_that_answers_something_other_than_http_is_told_apart_at_once() -> None:
    with socketserver.TCPServer(("127.0.0.1", 0), _NotHttp) as server:
        serving = threading.Thread(target=server.handle_request)
        serving.start()
        started = time.monotonic()
        result = webhooks.deliver(
            f"http://127.0.0.1:{server.server_address[1]}/hook", None, {}, timeout=5
        )
        serving.join(5)

    assert time.monotonic() - started < 5  # not the 10 s bound on a whole answer
    assert result.ok is False
    assert result.retryable is True
    assert result.detail.startswith("answered, but not in HTTP: BadStatusLine(")
    assert "220 mail.example.com ESMTP" in result.detail


class _NotHttp(socketserver.StreamRequestHandler):
    """A mail server's greeting where an HTTP status line should be."""

    def handle(self) -> None:
        self.rfile.readline()
        self.wfile.write(b"220 mail.example.com ESMTP\r\n")
