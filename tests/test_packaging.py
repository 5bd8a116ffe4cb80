"""The built wheel: what the README's Quick start installs (`pip install .`, not editable)
holds the package with its named SQL and its migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_ships_the_migrations_and_the_queries(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("schedctl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = sorted(
        Path(name).name for name in names if name.startswith("schedctl/migrations/")
    )
    shipped = sorted(p.name for p in (ROOT / "src" / "schedctl" / "migrations").glob("*.sql"))
    assert migrations == shipped
    statements = sorted(Path(name).name for name in names if name.startswith("schedctl/sql/"))
    assert statements == sorted(
        p.name for p in (ROOT / "src" / "schedctl" / "sql").iterdir() if p.suffix in (".sql", ".py")
    )
