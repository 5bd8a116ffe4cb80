"""Prometheus values are written exactly: a pass's time to its fraction of a second and
counts of a million or more to the unit, as the Prometheus client's own parser reads them."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Cli, Conn, make_due, make_org, make_scheduler


def _samples(text: str) -> dict[str, float]:
    """Every unlabelled sample of an exposition text by name (the parser refuses bad text)."""
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_the_metrics_file_has_the_pass_time_to_the_second(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    make_org(cli, "Acme")
    make_due(conn, make_scheduler(cli, "late.com")["id"], "2 minutes")
    target = tmp_path / "schedctl.prom"
    assert cli("tick", "--quiet", "--metrics-file", str(target)).code == 0
    written = time.time()
    samples = _samples(target.read_text())
    # Six significant digits would put it up to ~5,000 s off.
    assert abs(samples["schedctl_tick_last_timestamp_seconds"] - written) < 1
    assert samples["schedctl_tick_last_created"] == 1


def test_status_prometheus_has_exact_counts_above_a_million_and_the_exact_time(
    cli: Cli, conn: Conn
) -> None:
    make_org(cli, "Acme")
    make_due(conn, make_scheduler(cli, "late.com")["id"], "1234567 seconds")
    conn.execute(
        "INSERT INTO schedctl.tick_heartbeats"
        " (host, ticked_at, ok, due, created, skipped, failed, missed)"
        " VALUES ('big', now(), true, 2000000001, 1234567, 7654321, 0, 1999999999)"
    )
    result = cli("status", "--prometheus")
    assert result.code == 0, result.stderr
    read = time.time()
    samples = _samples(result.stdout)
    assert samples["schedctl_tick_last_due"] == 2000000001
    assert samples["schedctl_tick_last_created"] == 1234567
    assert samples["schedctl_tick_last_skipped"] == 7654321
    assert samples["schedctl_tick_last_missed"] == 1999999999
    assert abs(samples["schedctl_tick_last_timestamp_seconds"] - read) < 1
    lag = samples["schedctl_worst_lag_seconds"]
    assert 1234567 <= lag < 1234567 + 60
    assert lag != round(lag, -1)  # not rounded to six significant digits
