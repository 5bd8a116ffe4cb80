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
            failed = error is not None and summary.ok
            text = metrics.tick_text(
                _Failed(summary) if failed else summary,
                ended_at=time.time(),
                duration=duration,
                schedulers=schedulers,
            )
            metrics.write_atomically(self.metrics_file, text)
        if self.pinger is not None:
            counts = (
                f"due {summary.due}, created {summary.created}, skipped {summary.skipped}, "
                f"failed {summary.failed}, missed {summary.missed}"
            )
            if error is None and summary.ok:
                self.pinger.success(counts)
            else:
                first = error or (summary.errors[0]["message"] if summary.errors else "")
                self.pinger.fail(f"{counts}\n{first}")


class _Failed:
    """A pass that broke off: its counts so far, and not ok."""

    def __init__(self, summary: Any) -> None:
        self.__dict__.update(vars(summary))

    ok = False
