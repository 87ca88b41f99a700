"""End-to-end import speed and memory: `usersync import` of a generated 200 MB userdata file
from a real local sshd into SQLite and PostgreSQL, as a user would run it.

    .venv/bin/python bench/import_bench.py [--mb 200] [--no-postgres | --no-sqlite] [--also-mb 400]
                                           [--repeat 3] [--baseline GIT_REF] [--unchanged]

As root (it starts its own sshd and PostgreSQL on loopback). Prints, per case: wall seconds,
MB/s, rows/s and the importing process's peak RSS. With `--repeat N` each back end's cases run
N times, each time into a new store, and a last table gives each case's median time and its
highest peak RSS: one run's time can be off by a quarter on a shared machine.

With `--baseline REF` (a commit, branch or tag), each attempt runs the cases with the code of
REF and then with this tree's, taking turns, so that both meet the same hour of a machine
whose speed drifts; the medians are given for each.

With `--unchanged`, two more cases run after the first import: the same file again (a daily
full export that changed nothing), written as usual, then with `--skip-unchanged`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers.postgres import PostgresServer
from tests.servers.sshd import SshServer

HEADER = "userId,email,first_name,last_name,city,country,age,score,vip,signup,plan,notes\n"
FIRST = ["Anna", "Björn", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro"]
LAST = ["Smith", "O'Neil", "Müller", "García", "Nguyen", "Kowalski"]
CITIES = ['"Washington, D.C."', "Berlin", "Paris", '"São Paulo"', "Tokyo", "Lagos"]
MAPPING = [
    "--user-id", "userId",
    *(arg for c in HEADER.strip().split(",")[1:] for arg in ("--map", f"{c}={c}")),
    "--type", "age=integer", "--type", "score=number", "--type", "vip=boolean",
    "--type", "signup=date",
]  # fmt: skip


def row(rng: random.Random, user: int, n: int) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    note = '"said ""hi"""' if n % 50 == 0 else "none"
    return (
        f"u{user},{first.lower()}.{user}@example.com,{first},{last},{rng.choice(CITIES)},"
        f"{rng.choice(['DE', 'FR', 'US', 'BR', 'JP'])},{rng.randint(18, 90)},"
        f"{rng.random() * 100:.2f},{rng.choice(['true', 'false'])},"
        f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)},{rng.choice(['free', 'pro'])},{note}\n"
    )


def generate(path: Path, size: int, seed: int, every_other_from: int | None = None) -> None:
    """Write a userdata file of about `size` bytes with random user ids; with
    `every_other_from`, every other row takes its id from the file made with that seed."""
    rng = random.Random(seed)
    count = size // 60  # more ids than rows: a row is about 100 bytes
    ids = random.Random(seed).sample(range(10**9), count)
    old = random.Random(every_other_from).sample(range(10**9), count) if every_other_from else []
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        n = 0
        while handle.tell() < size - 200:
            user = old[n // 2] if old and n % 2 == 0 else ids[n]
            handle.write(row(rng, user, n))
            n += 1
    path.chmod(0o644)


def generate_apart(path: Path, size: int, seed: int, every_other_from: int | None = None) -> None:
    """`generate` in a child process: this process stays small, and so does the RSS that the
    measured imports inherit from it (Linux counts a parent's peak in a spawned child's)."""
    args = [str(path), str(size), str(seed), str(every_other_from or 0)]
    subprocess.run([sys.executable, __file__, "--generate", *args], check=True)


@dataclass
class Measure:
    seconds: float
    peak_rss_mb: float
    result: dict[str, object]


def run_import(url: str, server: SshServer, env: dict[str, str], *extra: str) -> Measure:
    command = [
        sys.executable, "-m", "usersync", "import", url, "--key", str(server.client_key_path),
        "--known-hosts", str(server.known_hosts_path), "--json", "--no-progress",
        *MAPPING, *extra,
    ]  # fmt: skip
    os.sync()  # the previous case's writes reach the disk first, not during this one
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            errors.seek(0)
            raise SystemExit(f"import failed: {errors.read().decode()}")
    return Measure(seconds, usage.ru_maxrss / 1024, json.loads(out))


def report(label: str, size: int, measure: Measure) -> None:
    result = measure.result
    rows = int(str(result["rows_read"]))
    unchanged = f" unchanged {result['users_unchanged']:,}" if result.get("users_unchanged") else ""
    print(
        f"{label:<60} {measure.seconds:6.1f} s  {size / 1e6 / measure.seconds:6.1f} MB/s  "
        f"{rows / measure.seconds:9,.0f} rows/s  peak RSS {measure.peak_rss_mb:5.0f} MB  "
        f"created {result['users_created']:,} updated {result['users_updated']:,}{unchanged}"
    )


FIRST_FILE, SECOND_FILE = "/bench/userdata_first.csv", "/bench/userdata_second.csv"  # on the sshd
Case = tuple[str, str, tuple[str, ...]]  # a label, the file on the sshd, more arguments
CASES: tuple[Case, ...] = (
    ("into an empty store", FIRST_FILE, ()),
    ("update, half the users present", SECOND_FILE, ()),
)
# With --unchanged, between the two: the first file again, as a daily full export that
# changed nothing, written again, then with its unchanged users skipped.
UNCHANGED_CASES: tuple[Case, ...] = (
    ("the same file again", FIRST_FILE, ()),
    ("the same file again, --skip-unchanged", FIRST_FILE, ("--skip-unchanged",)),
)
Store = Callable[[int], AbstractContextManager[str]]  # a new store's URL, for the n-th attempt


Version = tuple[str, dict[str, str]]  # a label (" [REF]", or "" alone) and its environment


def run_cases(
    name: str,
    store: Store,
    server: SshServer,
    versions: list[Version],
    sizes: dict[str, int],
    repeat: int,
    cases: tuple[Case, ...] = CASES,
) -> dict[str, list[Measure]]:
    """Both cases into a new store of back end `name`, `repeat` times, with each version in
    turn; the measures by label (name, version and case)."""
    measures: dict[str, list[Measure]] = {}
    for attempt in range(1, repeat + 1):
        for number, (version, env) in enumerate(versions):
            with store(attempt * len(versions) + number) as url:
                env["USERSYNC_DB"] = url
                for case, path, extra in cases:
                    measure = run_import(server.url(path), server, env, *extra)
                    label = f"{name}{version}: {case}"
                    measures.setdefault(label, []).append(measure)
                    suffix = f" ({attempt}/{repeat})" if repeat > 1 else ""
                    report(label + suffix, sizes[path], measure)
    return measures


def report_medians(sizes: dict[str, int], by_label: dict[str, list[Measure]]) -> None:
    for label, runs in by_label.items():
        path = next(path for case, path, _ in (*CASES, *UNCHANGED_CASES) if label.endswith(case))
        median = statistics.median(m.seconds for m in runs)
        typical = min(runs, key=lambda m: abs(m.seconds - median))
        peak = max(m.peak_rss_mb for m in runs)
        report(label, sizes[path], Measure(median, peak, typical.result))


def baseline_env(ref: str, work: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment that runs `usersync` with the code of git `ref` (its `src` folder,
    first on PYTHONPATH, before this tree's editable install)."""
    root = Path(__file__).resolve().parents[1]
    folder = work / "baseline"
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return {**env, "PYTHONPATH": str(folder / "src")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--also-mb", type=int, default=0, help="a second, larger file for RSS")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (median)")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure REF's code, in turns")
    parser.add_argument(
        "--unchanged",
        action="store_true",
        help="also import the first file again, written and then with --skip-unchanged",
    )
    parser.add_argument("--generate", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        path, size, seed, other = args.generate
        generate(Path(path), int(size), int(seed), int(other) or None)
        return
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    size = args.mb * 1_000_000 if args.mb != 200 else 209_715_200
    work = Path(tempfile.mkdtemp(prefix="usersync-bench-"))
    with SshServer() as server:
        server.mkdir("/bench")
        generate_apart(server.local_path(FIRST_FILE), size, seed=1)
        # the second file: every other user is one of the first file's, the rest are new
        generate_apart(server.local_path(SECOND_FILE), size, seed=2, every_other_from=1)
        sizes = {path: server.local_path(path).stat().st_size for path in (FIRST_FILE, SECOND_FILE)}
        print(f"files: {sizes[FIRST_FILE]:,} and {sizes[SECOND_FILE]:,} bytes")
        env = {**os.environ, "USERSYNC_DATA_DIR": str(work), "USERSYNC_MAX_FILE_SIZE": str(10**10)}
        versions: list[Version] = [("", env)]
        if args.baseline:
            base = baseline_env(args.baseline, work, env)
            versions = [(f" [{args.baseline}]", base), (" [this tree]", env)]
        postgres = None if args.no_postgres else PostgresServer().start()

        @contextmanager
        def sqlite_store(attempt: int) -> Iterator[str]:
            path = work / f"bench-{attempt}.db"
            yield f"sqlite:///{path}"
            for leftover in work.glob(f"{path.name}*"):  # with its -wal and -shm files
                leftover.unlink()

        @contextmanager
        def postgres_store(attempt: int) -> Iterator[str]:
            assert postgres is not None
            yield postgres.create_database(f"bench_{attempt}")
            postgres.drop_database(f"bench_{attempt}")  # each takes about 1 GB

        stores: list[tuple[str, Store]] = []
        if not args.no_sqlite:
            stores.append(("SQLite", sqlite_store))
        if postgres is not None:
            stores.append(("PostgreSQL", postgres_store))
        try:
            cases = (CASES[0], *UNCHANGED_CASES, CASES[1]) if args.unchanged else CASES
            results = [
                run_cases(name, store, server, versions, sizes, args.repeat, cases)
                for name, store in stores
            ]
            if args.repeat > 1:
                print(f"median of {args.repeat} runs (peak RSS: the highest):")
                for by_label in results:
                    report_medians(sizes, by_label)
            if args.also_mb:
                big = server.local_path("/bench/userdata_big.csv")
                generate_apart(big, args.also_mb * 1_000_000, seed=3)
                env["USERSYNC_DB"] = f"sqlite:///{work / 'big.db'}"
                report(
                    f"SQLite: {args.also_mb} MB into an empty store",
                    big.stat().st_size,
                    run_import(server.url("/bench/userdata_big.csv"), server, env),
                )
        finally:
            if postgres is not None:
                postgres.stop()
            shutil.rmtree(work, ignore_errors=True)  # its databases take about 1 GB


if __name__ == "__main__":
    main()
