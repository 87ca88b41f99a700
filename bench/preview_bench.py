"""Preview and listing speed against a real local sshd: a 200 MB file must preview as fast as a
1 KB one (the preview reads only the head), and listing a folder of many files stays quick.

    .venv/bin/python bench/preview_bench.py      (as root: it starts its own sshd)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers.sshd import SshServer
from usersync.browse import list_files, preview_file
from usersync.files import MAX_FILE_SIZE
from usersync.sources.hostkeys import HostKeyPolicy
from usersync.sources.sftp import SftpAuth, SftpSource, SftpTarget

ROW = b"1234567,Ann Example,ann@example.com,42,true,2026-11-25\n"


def median_seconds(action: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with SshServer() as server:
        header = b"userId,name,email,age,vip,born\n"
        big = server.local_path("/bench/userdata_big.csv")
        server.mkdir("/bench")
        with big.open("wb") as handle:
            handle.write(header)
            block = ROW * 20_000
            while handle.tell() + len(block) <= MAX_FILE_SIZE:
                handle.write(block)
        big.chmod(0o644)
        server.put("/bench/userdata_small.csv", header + ROW * 10)
        for i in range(1000):
            server.put(f"/many/userdata_{i:04}.csv", header + ROW)
        source = SftpSource.connect(
            SftpTarget(server.host, server.port, server.username),
            SftpAuth(key_path=server.client_key_path),
            HostKeyPolicy(known_hosts=(server.known_hosts_path,)),
        )
        with source:
            small_s = median_seconds(lambda: preview_file(source, "/bench/userdata_small.csv"))
            big_s = median_seconds(lambda: preview_file(source, "/bench/userdata_big.csv"))
            list_s = median_seconds(lambda: list_files(source, "/many"), repeat=3)
        size_mb = big.stat().st_size / 1e6
        print(f"preview of a 1 KB file:        {small_s * 1000:7.1f} ms (median of 7)")
        print(f"preview of a {size_mb:.0f} MB file:     {big_s * 1000:7.1f} ms (median of 7)")
        print(f"listing a folder of 1000 files: {list_s * 1000:7.1f} ms (median of 3)")


if __name__ == "__main__":
    main()
