"""The text format of /metrics, read back by the Prometheus client's own parser: label values
with quotes, backslashes and newlines, counters, and fractional values."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from usersync.metrics import Family, render


def test_what_render_writes_the_prometheus_parser_reads_back() -> None:
    runs = Family("usersync_runs_total", "counter", "Runs that ended.\nBy status.")
    runs.add(3, sync_id="1", status="succeeded")
    runs.add(0, sync_id="", status="failed")
    names = Family("usersync_sync_info", "gauge", "Each sync.")
    names.add(1, sync_id="2", name='Say "hi" \\ then\nbye')
    seconds = Family("usersync_sync_last_success_timestamp_seconds", "gauge", "When.")
    seconds.add(1764205205.123456, sync_id="2")
    empty = Family("usersync_rows_read_total", "counter", "Rows.")

    text = render([runs, names, seconds, empty])
    parsed = {family.name: family for family in text_string_to_metric_families(text)}

    assert parsed["usersync_runs"].type == "counter"
    assert parsed["usersync_runs"].documentation == "Runs that ended.\nBy status."
    assert [(s.name, s.labels, s.value) for s in parsed["usersync_runs"].samples] == [
        ("usersync_runs_total", {"sync_id": "1", "status": "succeeded"}, 3),
        ("usersync_runs_total", {"sync_id": "", "status": "failed"}, 0),
    ]
    assert parsed["usersync_sync_info"].samples[0].labels["name"] == 'Say "hi" \\ then\nbye'
    assert parsed["usersync_sync_last_success_timestamp_seconds"].samples[0].value == (
        1764205205.123456
    )
    assert parsed["usersync_rows_read"].samples == []
    assert 'usersync_runs_total{sync_id="1",status="succeeded"} 3\n' in text
