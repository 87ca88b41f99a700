import io

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
