"""Constraints the host adds to its own tables are reported as what they are: a unique
violation is "already exists" only for schedctl's own uniqueness rule."""

from __future__ import annotations

from typing import Any

from tests.helpers import assert_error, make_org, make_scheduler


def test_a_unique_constraint_the_host_adds_is_not_reported_as_already_exists(
    cli: Any, conn: Any
) -> None:
    conn.execute("CREATE UNIQUE INDEX one_scheduler_per_domain ON schedulers (domain_id)")
    make_org(cli, "Acme")
    make_org(cli, "Globex")
    make_scheduler(cli, "example.com", "--org", "Acme")

    # The same domain in the same organisation: schedctl's own rule, exit 4.
    same = assert_error(cli("create", "example.com", "--every", "6h", "--org", "Acme"), 4)
    assert same == "a scheduler for example.com already exists in this organisation"
    # In another organisation only the host's index refuses it: a database error, exit 1,
    # naming the host's constraint.
    other = assert_error(cli("create", "example.com", "--every", "6h", "--org", "Globex"), 1)
    assert "already exists in this organisation" not in other
    assert "one_scheduler_per_domain" in other
    assert conn.execute("SELECT count(*) FROM schedulers").fetchone() == (1,)
