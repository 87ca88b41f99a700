import io
import subprocess
import sys
import textwrap
from pathlib import Path

from usersync.spool import Spool

DATA = bytes(range(256)) * 4096  # 1 MiB


def test_replay_reads_what_was_copied_then_the_rest_of_the_source() -> None:
    with Spool(io.BytesIO(DATA)) as spool:
        first = spool.replay()
        assert first.read(1000) == DATA[:1000]  # pulls ahead into the copy
        second = spool.replay()
        assert second.read() == DATA
        assert spool.copied == len(DATA)


def test_finish_copies_the_rest_and_reads_the_local_copy_from_the_start() -> None:
    with Spool(io.BytesIO(DATA)) as spool:
        assert spool.replay().read(10) == DATA[:10]
        with spool.finish() as local:
            assert local.read() == DATA


def test_an_empty_source() -> None:
    with Spool(io.BytesIO(b"")) as spool:
        assert spool.replay().read() == b""
        with spool.finish() as local:
            assert local.read() == b""


def test_no_room_for_the_copy_is_a_clear_transient_error(tmp_path: Path) -> None:
    # A real failing write: the process may not write files over 1.5 MiB (as a full disk,
    # the write fails; EFBIG instead of ENOSPC), in a process of its own.
    script = textwrap.dedent(
        """
        import io, resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 19, 3 << 19))
        from usersync.spool import Spool, SpoolFull
        with Spool(io.BytesIO(b"x" * (4 << 20)), directory=sys.argv[1]) as spool:
            try:
                spool.finish()
            except SpoolFull as error:
                print(error.exit_code, error.transient, error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert done.stdout == (
        f"5 True no room for the file's local copy in {tmp_path} (File too large): an import "
        "keeps one, as large as the file, to read it again if needed; free disk space there, "
        "or set TMPDIR to a folder with room for it\n"
    )
