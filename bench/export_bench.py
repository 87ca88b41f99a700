"""Export speed and memory: `usersync export` of N users (1.65 M by default, 11 properties
each, as bench/store_bench.py makes them) from SQLite and, with --pg, PostgreSQL.

    .venv/bin/python bench/export_bench.py [--rows 1650000] [--pg postgresql://...]

For each store and format (csv, jsonl): the command's wall seconds, users/s, MB/s written and
its peak RSS, which must not grow with the number of users.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_bench import empty_batches
from usersync import db
from usersync.schema import users
from usersync.store import ConflictMode, UserStore, properties, workspaces

NAMES = {
    "email": "string",
    "first_name": "string",
    "last_name": "string",
    "city": "string",
    "plan": "string",
    "country": "string",
    "signup_date": "date",
    "age": "integer",
    "score": "number",
    "orders": "integer",
    "ltv": "number",
}


def fill(url: str, workspace: str, rows: int) -> None:
    engine = db.create_engine_for(url)
    try:
        db.migrate(engine)
        ws = workspaces.get_or_create(engine, workspace)
        properties.ensure(engine, ws, NAMES)
        UserStore(engine).apply(ws, empty_batches(rows), ConflictMode.UPDATE)
    finally:
        engine.dispose()


def export(url: str, workspace: str, fmt: str, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `usersync export` into `out`."""
    command = [sys.executable, "-m", "usersync", "export", "--format", fmt, "-o", str(out)]
    env = {**os.environ, "USERSYNC_DB": url}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--workspace", workspace], env=env, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    assert proc.stderr is not None
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export failed: {proc.stderr.read()}")
    return seconds, usage.ru_maxrss / 1024


def cleanup(url: str, workspace: str) -> None:
    engine = db.create_engine_for(url)
    try:
        ws = workspaces.get_or_create(engine, workspace)
        with engine.begin() as conn:
            conn.execute(sa.delete(users).where(users.c.workspace_id == ws))
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_650_000)
    parser.add_argument("--pg", metavar="URL", help="also export from this PostgreSQL database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("SQLite", f"sqlite:///{Path(tmp) / 'usersync.db'}")]
        if args.pg:
            stores.append(("PostgreSQL", args.pg))
        for name, url in stores:
            workspace = f"export-bench-{time.time_ns()}"
            fill(url, workspace, args.rows)
            try:
                for fmt in ("csv", "jsonl"):
                    out = Path(tmp) / f"users.{fmt}"
                    seconds, rss = export(url, workspace, fmt, out)
                    size = out.stat().st_size / 1e6
                    print(
                        f"{name:<10} {fmt:<5} {args.rows:,} users {seconds:6.1f} s  "
                        f"{args.rows / seconds:9,.0f} users/s  {size / seconds:6.1f} MB/s "
                        f"({size:,.0f} MB)  peak RSS {rss:5.0f} MB",
                        flush=True,
                    )
                    out.unlink()
            finally:
                if name == "PostgreSQL":
                    cleanup(url, workspace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
