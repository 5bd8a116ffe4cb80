"""The README's cron lines, installed as written, tick under a real cron daemon without
mail; and no README line installs schedctl from the package index.

The cron test runs its own cron daemon, as root, in a mount and process namespace of its own
(`unshare`): there /etc is a copy in which the README's `useradd` line makes the system
user `schedctl`, /etc/cron.d and the crontabs hold only this test's lines, /usr/local/bin holds
the link the README's install makes, and /usr/sbin/sendmail keeps what cron would mail. The
machine's own /etc, cron and users are untouched, and the daemon dies with the namespace."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import Cli, Conn, as_uri, make_due, make_org, make_scheduler

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# seconds: cron runs a job at the start of a minute. The tests mostly wait for it, so they
# are not `slow` (that lane is for work): they run beside the others.
WAIT_FOR_CRON = 150


def _readme_section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def _code_lines(text: str) -> list[str]:
    """Every line inside a fenced code block of `text`, without its indentation."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.append(line.strip())
    return lines


def readme_cron_lines() -> tuple[str, str]:
    """The /etc/cron.d line (with the user field) and the user's crontab line."""
    lines = [
        line
        for line in _code_lines(_readme_section("Running tick every minute"))
        if line.startswith("* * * * * ")
    ]
    system = [line for line in lines if line.startswith("* * * * * schedctl ")]
    user = [line for line in lines if not line.startswith("* * * * * schedctl ")]
    assert len(system) == 1 and len(user) == 1, lines
    return system[0], user[0]


def readme_useradd() -> str:
    lines = [
        line for line in _code_lines(_readme_section("Production install")) if "useradd" in line
    ]
    assert len(lines) == 1, lines
    return lines[0]


def test_no_readme_line_installs_schedctl_from_the_package_index() -> None:
    """schedctl is not on the package index: `pip install schedctl`, `pipx install schedctl`
    and `pip install -U schedctl` fail there."""
    from_index = re.compile(r"\bpipx? install\b(?:\s+-{1,2}[\w-]+)*\s+['\"]?schedctl\b")
    found = [line for line in README.splitlines() if from_index.search(line)]
    assert found == []
    # The install lines name a checkout or a wheel.
    install = _readme_section("Production install")
    assert "/opt/schedctl/bin/pip install -q ." in install
    assert "pip install -q dist/schedctl-*.whl" in install


def test_the_readme_cron_lines_name_the_command_by_its_full_path() -> None:
    for line in readme_cron_lines():
        command = line.split("exec ", 1)[1].split()[0]
        assert command.startswith("/"), line


# ---------------------------------------------------------------- a real cron daemon

_NAMESPACE_SCRIPT = r"""
set -eu
T="$1"
# The python of the test's virtual environment may sit under a folder that other users may
# not enter (root's home): show that folder with only the path to it.
if [ -n "${SHADOW_DIR:-}" ]; then
    mkdir -p "$T/shadow/$SHADOW_CHILD"
    mount --bind "$SHADOW_DIR/$SHADOW_CHILD" "$T/shadow/$SHADOW_CHILD"
    mount --rbind "$T/shadow" "$SHADOW_DIR"
fi
mount --bind "$T/etc" /etc
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$T/crontabs" /var/spool/cron/crontabs
mount --bind "$T/localbin" /usr/local/bin
mkdir -p "$T/sbin.orig"
mount --bind /usr/sbin "$T/sbin.orig"
for f in "$T"/sbin.orig/*; do ln -s "$f" "$T/sbin/$(basename "$f")" 2>/dev/null || true; done
rm -f "$T/sbin/sendmail"
cp "$T/sendmail" "$T/sbin/sendmail"
mount --bind "$T/sbin" /usr/sbin
# The README's line, as written, for the system user.
sh -c "$USERADD"
install -d -m 0755 /etc/schedctl
install -m 0600 -o schedctl -g schedctl "$T/env" /etc/schedctl/env
if [ "$VARIANT" = user ]; then
    # `crontab -e -u schedctl`, with an editor that writes the README's line (a second
    # later: crontab takes a file of the same modification time as unchanged).
    EDITOR="sleep 1.1; cp $T/user-line" crontab -e -u schedctl
fi
echo ready
exec /usr/sbin/cron -f
"""

_UNSHARE = ("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child")

_FAKE_SENDMAIL = """#!/bin/sh
cat > "$(mktemp -p {mail} mail.XXXXXX)"
"""


def _shadow_for(path: Path) -> tuple[str, str] | None:
    """The outermost folder on `path` that other users may not enter, and its child on the
    way to `path`."""
    parts = path.parts
    for i in range(1, len(parts) - 1):
        folder = Path(*parts[: i + 1])
        if not folder.stat().st_mode & stat.S_IXOTH:
            return str(folder), parts[i + 1]
    return None


@pytest.fixture
def cron_root(database_url: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("starts a cron daemon in a namespace of its own, which needs root")
    host = conninfo_to_dict(database_url).get("host") or ""
    if str(host).startswith("/"):
        # The embedded test server answers only on a socket in its private data folder.
        pytest.skip(
            "the cron job's user cannot reach a server that listens only on a private socket"
        )
    assert shutil.which("cron") or Path("/usr/sbin/cron").exists(), (
        "the cron daemon is not installed (Debian package `cron`; .ci/run installs it)"
    )
    assert shutil.which("unshare"), "unshare (util-linux) is needed"
    path = Path(f"/tmp/schedctl-cron-test-{os.getpid()}-{time.monotonic_ns()}")
    path.mkdir(mode=0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _uid_processes(uid: int) -> int:
    out = subprocess.run(["pgrep", "-U", str(uid)], capture_output=True, text=True).stdout
    return len(out.split())


@pytest.mark.parametrize("variant", ["cron.d", "user"])
def test_the_readme_cron_line_ticks_under_a_real_cron_daemon_without_mail(
    cli: Cli, conn: Conn, database_url: str, cron_root: Path, variant: str
) -> None:
    make_org(cli, "Acme")
    scheduler = make_scheduler(cli, "example.com")
    make_due(conn, scheduler["id"], "1 minute")
    system_line, user_line = readme_cron_lines()

    t = cron_root
    shutil.copytree("/etc", t / "etc", symlinks=True)
    for name in os.listdir(t / "etc" / "cron.d"):
        (t / "etc" / "cron.d" / name).unlink()
    (t / "etc" / "crontab").write_text("")  # no system jobs of the machine's
    control = "* * * * * schedctl echo mail-works\n"  # proves mail is caught
    (t / "etc" / "cron.d" / "zz-control").write_text(control)
    if variant == "cron.d":
        (t / "etc" / "cron.d" / "schedctl").write_text(system_line + "\n")
    (t / "user-line").write_text(user_line + "\n")
    for name in os.listdir(t / "etc" / "cron.d"):
        (t / "etc" / "cron.d" / name).chmod(0o644)
    crontabs = t / "crontabs"
    crontabs.mkdir()
    shutil.copystat("/var/spool/cron/crontabs", crontabs)
    st = os.stat("/var/spool/cron/crontabs")
    os.chown(crontabs, st.st_uid, st.st_gid)
    (t / "localbin").mkdir()
    (t / "localbin" / "schedctl").symlink_to(Path(sys.executable).parent / "schedctl")
    (t / "sbin").mkdir()
    mail = t / "mail"
    mail.mkdir()
    mail.chmod(0o1777)
    (t / "sendmail").write_text(_FAKE_SENDMAIL.format(mail=mail))
    (t / "sendmail").chmod(0o755)
    (t / "env").write_text(f"SCHEDCTL_DATABASE_URL='{as_uri(database_url)}'\n")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "USERADD": readme_useradd(),
        "VARIANT": variant,
    }
    shadow = _shadow_for(Path(os.path.realpath(sys.executable)))
    if shadow is not None:
        env["SHADOW_DIR"], env["SHADOW_CHILD"] = shadow
        (t / "shadow").mkdir(mode=0o755)
    daemon = subprocess.Popen(
        [*_UNSHARE, "sh", "-c", _NAMESPACE_SCRIPT, "sh", str(t)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(t / "daemon.log").open("w"),
        text=True,
    )
    log = t / "daemon.log"
    try:
        assert daemon.stdout is not None
        ready = daemon.stdout.readline().strip()
        assert ready == "ready", (ready, log.read_text())
        uid = int((t / "etc" / "passwd").read_text().split("\nschedctl:", 1)[1].split(":")[1])
        deadline = time.monotonic() + WAIT_FOR_CRON
        while True:
            made = conn.execute(
                "SELECT count(*) FROM jobs WHERE scheduler_id = %s", [scheduler["id"]]
            ).fetchone()
            mails = sorted(mail.iterdir())
            if made == (1,) and mails:
                break
            assert daemon.poll() is None, log.read_text()
            assert time.monotonic() < deadline, (made, [m.read_text() for m in mails])
            time.sleep(0.5)
        # The pass and its mail, if any, are done once the user runs nothing more.
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 3:
            if _uid_processes(uid):
                quiet_since = time.monotonic()
            assert time.monotonic() < deadline + 60
            time.sleep(0.2)
    finally:
        daemon.kill()
        daemon.wait(timeout=30)
    texts = [m.read_text() for m in sorted(mail.iterdir())]
    assert len(texts) == 1 and "mail-works" in texts[0], texts
