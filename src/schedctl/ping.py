"""A dead man's switch: healthchecks.io-style pings around a tick pass (SCHEDCTL_PING_URL).

`<url>/start` before the pass, `<url>` after a pass that went well, `<url>/fail` after one
that did not. A ping that fails is one warning line and never fails the tick. The URL is a
secret (anyone holding it can report for the check): only its host is ever printed."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from schedctl import journal

TIMEOUT = 10.0  # seconds per try
TRIES = 3  # the first and a couple of retries
_PAUSE = 1.0  # seconds between tries


class Pinger:
    """Pings one check URL."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT, tries: int = TRIES) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.tries = tries
        self.host = urlsplit(url).hostname or "the ping URL"

    def start(self) -> None:
        self._send("/start", "")

    def success(self, body: str) -> None:
        self._send("", body)

    def fail(self, body: str) -> None:
        self._send("/fail", body)

    def _send(self, suffix: str, body: str) -> None:
        """POST `body` (shown in the check's log) to the URL plus `suffix`, retried."""
        reason = ""
        for attempt in range(self.tries):
            if attempt:
                time.sleep(_PAUSE)
            request = urllib.request.Request(
                self.url + suffix,
                data=body.encode("utf-8", "replace")[:10_000],
                method="POST",
                headers={"User-Agent": "schedctl", "Content-Type": "text/plain; charset=utf-8"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read(1024)
                return
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    break  # a wrong URL does not get better by asking again
            except (OSError, ValueError) as exc:  # refused, timed out, unresolvable, bad URL
                reason = _reason(exc)
        kind = suffix.lstrip("/") or "success"
        journal.warning(
            f"the {kind} ping to {self.host} failed ({reason}); the tick itself is not affected"
        )


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    if isinstance(inner, BaseException):
        exc = inner
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
