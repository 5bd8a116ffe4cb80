"""Monitoring that fits the tools operators already run: Prometheus gauges (a tick's
textfile for node_exporter, `status --prometheus`), read back with the Prometheus client's
own parser, and healthchecks.io-style pings to a local HTTP server."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import (
    Cli,
    Conn,
    assert_error,
    db_now,
    fetch_one,
    fingerprint,
    make_due,
    make_org,
    make_scheduler,
    run_cli_subprocess,
)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, by name and labels (the parser refuses bad text)."""
    found = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _world(cli: Cli, conn: Conn) -> None:
    """Three schedulers: two due (one 13 hours late), one paused."""
    make_org(cli, "Acme")
    late = make_scheduler(cli, "late.com")
    due = make_scheduler(cli, "due.com")
    make_scheduler(cli, "paused.com", "--disabled")
    make_due(conn, late["id"], "13 hours")
    make_due(conn, due["id"], "1 minute")


# ---------------------------------------------------------------- Prometheus


def test_tick_writes_its_gauges_to_the_metrics_file(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    _world(cli, conn)
    target = tmp_path / "schedctl.prom"
    result = cli("tick", "--quiet", "--metrics-file", str(target))
    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    samples = _samples(target.read_text())
    assert _value(samples, "schedctl_tick_last_success") == 1
    assert _value(samples, "schedctl_tick_last_due") == 2
    assert _value(samples, "schedctl_tick_last_created") == 2
    assert _value(samples, "schedctl_tick_last_skipped") == 0
    assert _value(samples, "schedctl_tick_last_failed") == 0
    assert _value(samples, "schedctl_tick_last_missed") == 2  # the late one's 2 other slots
    assert _value(samples, "schedctl_tick_last_duration_seconds") >= 0
    assert _value(samples, "schedctl_tick_last_timestamp_seconds") > 0
    assert _value(samples, "schedctl_schedulers", state="enabled") == 2
    assert _value(samples, "schedctl_schedulers", state="paused") == 1
    assert _value(samples, "schedctl_schedulers_due") == 0
    assert _value(samples, "schedctl_worst_lag_seconds") == 0
    # Written through a temporary file in the same folder, renamed over the target.
    assert [p.name for p in tmp_path.iterdir()] == ["schedctl.prom"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_a_tick_that_cannot_connect_writes_a_failed_pass(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = tmp_path / "schedctl.prom"
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    assert_error(
        run_cli_subprocess(
            ["tick", "--quiet", "--metrics-file", str(target)], {"SCHEDCTL_DATABASE_URL": url}
        ),
        5,
    )
    samples = _samples(target.read_text())
    assert _value(samples, "schedctl_tick_last_success") == 0
    assert ("schedctl_worst_lag_seconds", ()) not in samples  # not read: no database


def test_a_metrics_file_in_a_missing_folder_is_refused_before_any_work(
    cli: Cli, conn: Conn, tmp_path: Path
) -> None:
    _world(cli, conn)
    before = fingerprint(conn)
    message = assert_error(
        cli("tick", "--metrics-file", str(tmp_path / "missing" / "schedctl.prom")), 2
    )
    assert "--metrics-file" in message
    assert fingerprint(conn) == before


def test_status_prometheus_prints_the_gauges_of_the_whole_database(cli: Cli, conn: Conn) -> None:
    _world(cli, conn)
    make_org(cli, "Beta")
    before = _samples(cli("status", "--prometheus").stdout)
    assert _value(before, "schedctl_up") == 1
    assert _value(before, "schedctl_schedulers", state="enabled") == 2
    assert _value(before, "schedctl_schedulers", state="paused") == 1
    assert _value(before, "schedctl_schedulers_due") == 2
    assert _value(before, "schedctl_worst_lag_seconds") >= 13 * 3600
    assert ("schedctl_tick_last_success", ()) not in before  # no tick yet

    assert cli("tick", "--quiet").code == 0
    result = cli("status", "--prometheus")
    assert result.code == 0, result.stderr
    after = _samples(result.stdout)
    assert _value(after, "schedctl_tick_last_success") == 1
    assert _value(after, "schedctl_tick_last_created") == 2
    assert _value(after, "schedctl_schedulers_due") == 0
    assert "--prometheus" in assert_error(cli("status", "--prometheus", "--org", "Acme"), 2)


def test_every_prometheus_value_is_exact(cli: Cli, conn: Conn, tmp_path: Path) -> None:
    """Each gauge reads back (with Prometheus's own parser) as the value it stands for: a
    count of seven digits, a timestamp to the microsecond, a sub-second duration, a lag of
    centuries, none rounded."""
    make_org(cli, "Acme")
    ancient = make_scheduler(cli, "ancient.com")
    make_due(conn, ancient["id"], "1000 years")  # about 1.46 million missed grid times
    target = tmp_path / "schedctl.prom"
    started = time.time()
    summary = json.loads(cli("tick", "--json", "--metrics-file", str(target)).stdout)
    ended = time.time()
    assert summary["missed"] > 1_000_000

    pass_gauges = _samples(target.read_text())
    assert _value(pass_gauges, "schedctl_tick_last_missed") == summary["missed"]
    assert _value(pass_gauges, "schedctl_tick_last_created") == 1
    assert started <= _value(pass_gauges, "schedctl_tick_last_timestamp_seconds") <= ended
    took = _value(pass_gauges, "schedctl_tick_last_duration_seconds")
    assert 0 < took <= ended - started
    assert took != int(took)  # its fraction of a second is kept

    behind = make_scheduler(cli, "behind.com")
    slot = make_due(conn, behind["id"], "1000 years 0.25 seconds")
    before = db_now(conn)
    result = cli("status", "--prometheus")
    after = db_now(conn)
    assert result.code == 0, result.stderr
    status_gauges = _samples(result.stdout)
    ticked_at, missed = fetch_one(conn, "SELECT ticked_at, missed FROM schedctl.tick_heartbeats")
    assert _value(status_gauges, "schedctl_tick_last_timestamp_seconds") == ticked_at.timestamp()
    assert _value(status_gauges, "schedctl_tick_last_missed") == missed == summary["missed"]
    lag = _value(status_gauges, "schedctl_worst_lag_seconds")
    assert (before - slot).total_seconds() <= lag <= (after - slot).total_seconds()


def test_the_success_gauge_is_the_last_ticks_not_the_status_verdict(cli: Cli, conn: Conn) -> None:
    """schedctl_tick_last_success says how the last tick went: 0 after a failed tick while
    the schedulers are healthy, 1 after a good tick while a scheduler lags (status exits 1)."""
    make_org(cli, "Acme")
    doc = make_scheduler(cli, "refused.com")
    make_due(conn, doc["id"], "1 minute")
    (domain_id,) = fetch_one(conn, "SELECT domain_id FROM schedulers WHERE id = %s", [doc["id"]])
    conn.execute(
        f"ALTER TABLE jobs ADD CONSTRAINT host_refuses_domain CHECK (domain_id <> {domain_id})"
        " NOT VALID"
    )
    assert cli("tick", "--quiet").code == 1
    failed = _samples(cli("status", "--prometheus").stdout)
    assert _value(failed, "schedctl_tick_last_success") == 0
    assert _value(failed, "schedctl_tick_last_failed") == 1

    conn.execute("ALTER TABLE jobs DROP CONSTRAINT host_refuses_domain")
    assert cli("tick", "--quiet").code == 0
    lagging = make_scheduler(cli, "lagging.com")
    make_due(conn, lagging["id"], "2 hours")
    assert cli("status").code == 1  # the verdict: a scheduler lags
    succeeded = _samples(cli("status", "--prometheus").stdout)
    assert _value(succeeded, "schedctl_tick_last_success") == 1
    assert _value(succeeded, "schedctl_worst_lag_seconds") >= 7200


# ---------------------------------------------------------------- pings


class _Recorder(http.server.BaseHTTPRequestHandler):
    calls: list[tuple[str, str, str]]
    status = 200

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.calls.append((self.command, self.path, body))
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b"OK")

    do_GET = do_POST = _record

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ping_server() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    calls: list[tuple[str, str, str]] = []
    handler = type("Handler", (_Recorder,), {"calls": calls})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    secret = os.urandom(8).hex()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/ping/{secret}", calls
    finally:
        server.shutdown()
        server.server_close()


def test_tick_pings_start_then_success(
    cli: Cli, conn: Conn, ping_server: tuple[str, list[tuple[str, str, str]]]
) -> None:
    url, calls = ping_server
    _world(cli, conn)
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    result = cli("tick", "--quiet", env={"SCHEDCTL_PING_URL": url})
    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert [(method, p) for method, p, _ in calls] == [
        ("POST", f"/{path}/start"),
        ("POST", f"/{path}"),
    ]
    assert "created 2" in calls[1][2]


def test_a_pass_that_fails_pings_fail(
    ping_server: tuple[str, list[tuple[str, str, str]]],
) -> None:
    url, calls = ping_server
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli_subprocess(
        ["tick", "--quiet"],
        {
            "SCHEDCTL_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/postgres",
            "SCHEDCTL_PING_URL": url,
        },
    )
    assert_error(result, 5)
    assert [p.rsplit("/", 1)[1] for _, p, _ in calls] == ["start", "fail"]
    assert "cannot connect" in calls[1][2]


def test_a_ping_that_fails_is_one_warning_and_never_fails_the_tick(cli: Cli, conn: Conn) -> None:
    _world(cli, conn)
    with socket.socket() as sock:  # nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret = os.urandom(8).hex()
    result = cli("tick", "--quiet", env={"SCHEDCTL_PING_URL": f"http://127.0.0.1:{port}/{secret}"})
    assert result.code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr  # the start ping and the success ping
    assert all(line.startswith("warning: the ") and "127.0.0.1" in line for line in lines)
    assert secret not in result.stderr
    assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (2,)


def test_a_ping_url_that_is_not_http_is_refused_without_printing_it(cli: Cli, conn: Conn) -> None:
    _world(cli, conn)
    before = fingerprint(conn)
    message = assert_error(cli("tick", env={"SCHEDCTL_PING_URL": "ftp://secret-token@x/y"}), 2)
    assert "secret-token" not in message and "SCHEDCTL_PING_URL" in message
    assert fingerprint(conn) == before
