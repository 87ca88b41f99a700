"""`usersync worker`: the scheduler and runner alone, for scale-out (any number of them on
one PostgreSQL database; `usersync serve` runs one in-process)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from usersync import db, logs
from usersync.cli_import import db_option
from usersync.cli_output import handle_errors, stop_on_sigterm
from usersync.config import load_settings
from usersync.secretbox import SecretBox
from usersync.service import open_database
from usersync.worker import Worker

log = logging.getLogger(__name__)


@click.command()
@db_option
@handle_errors
def worker(db_url: str | None) -> None:
    """Run due syncs and queued runs until stopped (SIGTERM or Ctrl-C lets the current run
    finish first; a second one stops at once, and the run is rolled back)."""
    settings = load_settings(db_url=db_url)
    logs.configure(settings.log_format, settings.log_level)
    stop = threading.Event()

    def finish(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s: finishing the current run and its webhook call, then stopping (send it "
            "again to stop at once)",
            signal.Signals(signum).name,
        )
        stop.set()
        # Again: stop where it is, through the same cleanup as Ctrl-C (the run is recorded
        # as failed, and tried again later; its transaction is rolled back).
        stop_on_sigterm()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    with open_database(settings) as engine:
        box = SecretBox.from_settings(settings)
        runner = Worker(settings, engine, box)
        log.info("usersync worker %s: data in %s", runner.name, db.describe(engine))
        runner.run(stop)
