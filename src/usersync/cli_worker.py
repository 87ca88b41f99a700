"""`usersync worker`: the scheduler and runner alone, for scale-out (any number of them on
one PostgreSQL database; `usersync serve` runs one in-process)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from usersync import db
from usersync.cli_import import db_option
from usersync.cli_output import handle_errors, stop_on_sigterm
from usersync.config import load_settings
from usersync.secretbox import SecretBox
from usersync.service import open_database
from usersync.worker import Worker


@click.command()
@db_option
@handle_errors
def worker(db_url: str | None) -> None:
    """Run due syncs and queued runs until stopped (SIGTERM or Ctrl-C lets the current run
    finish first; a second one stops at once, and the run is rolled back)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings(db_url=db_url)
    stop = threading.Event()

    def finish(signum: int, _frame: FrameType | None) -> None:
        click.echo(
            f"{signal.Signals(signum).name}: finishing the current run and its webhook call, "
            "then stopping (send it again to stop at once)",
            err=True,
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
        click.echo(f"usersync worker {runner.name}: data in {db.describe(engine)}", err=True)
        runner.run(stop)
