"""What a tick pass tells monitoring beyond its own output: the metrics file for
node_exporter's textfile collector, and the dead man's switch pings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from schedctl import metrics
from schedctl.errors import InvalidInput


def check_ping_url(url: str | None) -> str | None:
    """SCHEDCTL_PING_URL, checked before any work (never printed: it is a secret)."""
    if url is None or not url.strip():
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("SCHEDCTL_PING_URL must be an http:// or https:// URL")
    return url.strip()


class TickWatch:
    """Pings before and after a pass, and writes its gauges once it ended."""

    def __init__(self, *, metrics_file: Path | None, ping_url: str | None) -> None:
        from schedctl.ping import Pinger

        self.metrics_file = metrics_file
        self.pinger = Pinger(ping_url) if ping_url else None
        self._started = time.monotonic()

    def start(self) -> None:
        self._started = time.monotonic()
        if self.pinger is not None:
            self.pinger.start()

    def finish(self, summary: Any, schedulers: dict[str, Any] | None, error: str | None) -> None:
        """After the pass: `error` is why the pass itself broke off (None when it ran)."""
        duration = time.monotonic() - self._started
        if self.metrics_file is not None:
            text = metrics.tick_text(
                summary.counts(),
                ok=error is None and summary.ok,  # a pass that broke off failed
                ended_at=time.time(),
                duration=duration,
                schedulers=schedulers,
            )
            metrics.write_atomically(self.metrics_file, text)
        if self.pinger is not None:
            counts = ", ".join(f"{name} {value}" for name, value in summary.counts().items())
            if error is None and summary.ok:
                self.pinger.success(counts)
            else:
                first = error or (summary.errors[0]["message"] if summary.errors else "")
                self.pinger.fail(f"{counts}\n{first}")


def monitored_pass(
    settings: Any,
    summary: Any,
    *,
    dry_run: bool,
    limit: int | None,
    metrics_file: Path | None,
    on_job: Any,
) -> None:
    """One tick pass as `schedctl tick` runs it: pings around it, its gauges written once it
    ended, and a second connection when SCHEDCTL_TICK_CONNECTIONS asks for one (never to the
    embedded server, which each connection would start or join again). `summary` holds what
    was committed, also when the pass broke off (the error is raised after monitoring was
    told)."""
    from schedctl import db
    from schedctl import tick as tick_pass
    from schedctl.errors import SchedctlError

    watch = None
    if not dry_run:  # a dry run writes nothing and tells monitoring nothing
        ping_url = check_ping_url(
            settings.ping_url.get_secret_value() if settings.ping_url is not None else None
        )
        watch = TickWatch(
            metrics_file=metrics.check_target(metrics_file) if metrics_file is not None else None,
            ping_url=ping_url,
        )
        watch.start()
    second = (
        (lambda: db.connect(settings))
        if settings.tick_connections > 1 and settings.database_url is not None
        else None
    )
    schedulers = None
    try:
        # Announces the embedded server, even with --quiet: a tick that falls back to it is
        # misconfigured (the URL variable is missing or misspelt), and cron mails the notice.
        url = db.database_url(settings)
        with db.connect(settings, url) as conn:
            db.preflight(conn)
            tick_pass.run(
                conn, on_job=on_job, dry_run=dry_run, limit=limit, connect=second, summary=summary
            )
            if watch is not None and watch.metrics_file is not None:
                from schedctl.monitoring import scheduler_counts

                schedulers = scheduler_counts(conn)
    except SchedctlError as exc:
        if summary.due and not dry_run:  # batches committed before the pass broke off
            summary.errors.append({"scheduler_id": None, "message": exc.message})
        if watch is not None:
            watch.finish(summary, None, exc.message)
        raise
    if watch is not None:
        watch.finish(summary, schedulers, None)
