"""Benchmark of the User 360 store's bulk apply (the store part of an import only).

    .venv/bin/python bench/store_bench.py [--rows 1650000] [--pg postgresql://...] [--cleared]

For SQLite (a fresh file) and, with --pg, PostgreSQL (a fresh workspace in that database):
1. "empty":       N changes with 11 string/number properties, random user ids in file order,
                  applied in UPDATE mode to an empty workspace;
2. "update-half": N more, half of them for existing users, half new, in random order;
3. with --cleared, "update-cleared": as 2 (with other new users), each change also clearing
                  a property (a null, as `usersync import --empty-cells clear` gives for an
                  empty cell).
Prints seconds, rows/s and the process's peak RSS. The changes are generated lazily while
the store consumes them; "gen" is the time generating them alone takes, "store" = total - gen.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from usersync import db
from usersync.schema import users
from usersync.store import ConflictMode, UserChange, UserStore, workspaces

DEFAULT_ROWS = 1_650_000
BATCH = 10_000
_MASK = (1 << 64) - 1
_MIX = 0x9E37_79B9_7F4A_7C15  # odd: i -> i * _MIX mod 2**64 is a bijection (distinct ids)
_CITIES = ("Berlin", "Paris", "Lyon", "Kraków", "Leeds", "Austin", "Porto", "Malmö")
_PLANS = ("free", "pro", "team", "enterprise")


def user_id(index: int) -> str:
    return f"u{(index * _MIX) & _MASK:016x}"


def change(index: int, generation: int) -> UserChange:
    uid = user_id(index)
    n = (index * 2_654_435_761 + generation) & 0xFFFF_FFFF
    properties = (
        f'{{"email":"{uid}@example.com","first_name":"Name{n % 997}",'
        f'"last_name":"Family{n % 7919}","city":"{_CITIES[n % 8]}","plan":"{_PLANS[n % 4]}",'
        f'"country":"C{n % 199}","signup_date":"2024-{1 + n % 12:02d}-{1 + n % 28:02d}",'
        f'"age":{18 + n % 70},"score":{n % 100_000 / 100},"orders":{n % 500},'
        f'"ltv":{n % 1_000_000 / 100}}}'
    )
    return UserChange(uid, properties)


def empty_batches(rows: int) -> Iterator[list[UserChange]]:
    """Users 0..rows-1 (their ids, hashes of the index, come in random key order)."""
    for start in range(0, rows, BATCH):
        yield [change(i, 0) for i in range(start, min(start + BATCH, rows))]


def update_half_batches(rows: int, generation: int = 1) -> Iterator[list[UserChange]]:
    """Every other change hits an existing user (spread over the key space); the rest are new."""
    new = generation * rows  # the first new user of this generation
    for start in range(0, rows, BATCH):
        yield [
            change(k if k % 2 == 0 else new + k, generation)
            for k in range(start, min(start + BATCH, rows))
        ]


def cleared_batches(rows: int) -> Iterator[list[UserChange]]:
    """As update_half_batches, other new users, and each change clears `town` (a null)."""
    for batch in update_half_batches(rows, generation=2):
        yield [UserChange(c.user_id, '{"town":null,' + c.properties_json[1:]) for c in batch]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def generation_seconds(rows: int) -> float:
    started = time.perf_counter()
    for _batch in empty_batches(rows):
        pass
    return time.perf_counter() - started


def run(
    label: str, engine: Engine, rows: int, gen: float, *, cleanup: bool, cleared: bool = False
) -> None:
    db.migrate(engine)
    name = f"bench-{time.time_ns()}"
    ws = workspaces.get_or_create(engine, name)
    store = UserStore(engine)
    try:
        phases = [("empty", empty_batches(rows)), ("update-half", update_half_batches(rows))]
        if cleared:
            phases.append(("update-cleared", cleared_batches(rows)))
        for phase, batches in phases:
            started = time.perf_counter()
            counts = store.apply(ws, batches, ConflictMode.UPDATE)
            total = time.perf_counter() - started
            net = total - gen
            print(
                f"{label:10} {phase:14} rows={rows:,} total={total:6.2f}s gen={gen:5.2f}s "
                f"store={net:6.2f}s ({rows / net:,.0f} rows/s) created={counts.created:,} "
                f"updated={counts.updated:,} peak_rss={peak_rss_mb():.0f} MB",
                flush=True,
            )
    finally:
        if cleanup:  # leave a shared database as it was
            with engine.begin() as conn:
                conn.execute(sa.delete(users).where(users.c.workspace_id == ws))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--pg", metavar="URL", help="also benchmark this PostgreSQL database")
    parser.add_argument("--dir", type=Path, help="put the SQLite file here (default: a temp dir)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--cleared", action="store_true", help="also an update whose changes clear a property"
    )
    args = parser.parse_args(argv)

    gen = generation_seconds(args.rows)
    print(f"generating {args.rows:,} changes alone takes {gen:.2f}s", flush=True)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            engine = db.create_engine_for(db.default_db_url(Path(tmp)))
            try:
                run("sqlite", engine, args.rows, gen, cleanup=False, cleared=args.cleared)
                size = (Path(tmp) / db.DB_FILE_NAME).stat().st_size
                print(f"sqlite     file size {size / 1e6:,.0f} MB", flush=True)
            finally:
                engine.dispose()
    if args.pg:
        engine = db.create_engine_for(args.pg)
        try:
            run("postgresql", engine, args.rows, gen, cleanup=True, cleared=args.cleared)
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
