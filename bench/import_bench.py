"""End-to-end import speed and memory: `usersync import` of a generated 200 MB userdata file
from a real local sshd into SQLite and PostgreSQL, as a user would run it.

    .venv/bin/python bench/import_bench.py [--mb 200] [--no-postgres | --no-sqlite] [--also-mb 400]

As root (it starts its own sshd and PostgreSQL on loopback). Prints, per case: wall seconds,
MB/s, rows/s and the importing process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
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
    rows = int(str(measure.result["rows_read"]))
    print(
        f"{label:<44} {measure.seconds:6.1f} s  {size / 1e6 / measure.seconds:6.1f} MB/s  "
        f"{rows / measure.seconds:9,.0f} rows/s  peak RSS {measure.peak_rss_mb:5.0f} MB  "
        f"created {measure.result['users_created']:,} updated {measure.result['users_updated']:,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--also-mb", type=int, default=0, help="a second, larger file for RSS")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--generate", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        path, size, seed, other = args.generate
        generate(Path(path), int(size), int(seed), int(other) or None)
        return
    size = args.mb * 1_000_000 if args.mb != 200 else 209_715_200
    work = Path(tempfile.mkdtemp(prefix="usersync-bench-"))
    with SshServer() as server:
        server.mkdir("/bench")
        first = server.local_path("/bench/userdata_first.csv")
        generate_apart(first, size, seed=1)
        # the second file: every other user is one of the first file's, the rest are new
        second = server.local_path("/bench/userdata_second.csv")
        generate_apart(second, size, seed=2, every_other_from=1)
        print(f"files: {first.stat().st_size:,} and {second.stat().st_size:,} bytes")
        env = {**os.environ, "USERSYNC_DATA_DIR": str(work), "USERSYNC_MAX_FILE_SIZE": str(10**10)}
        targets = [] if args.no_sqlite else [("SQLite", f"sqlite:///{work / 'bench.db'}")]
        postgres = None if args.no_postgres else PostgresServer().start()
        try:
            if postgres is not None:
                targets.append(("PostgreSQL", postgres.create_database("bench")))
            for name, url in targets:
                env["USERSYNC_DB"] = url
                report(
                    f"{name}: into an empty store",
                    first.stat().st_size,
                    run_import(server.url("/bench/userdata_first.csv"), server, env),
                )
                report(
                    f"{name}: update, half the users present",
                    second.stat().st_size,
                    run_import(server.url("/bench/userdata_second.csv"), server, env),
                )
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
