"""Row-level security on the host's tables, as on Supabase: schedctl refuses to run (exit 5,
one error line naming row-level security and the tables) when policies may hide rows from
its role, rather than act on the rows it sees and report that all was well; BYPASSRLS on the
login role, or policies that show it every row (contrib/grants.sql), let it work."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import Result, as_uri, assert_error, make_due, make_org, make_scheduler, run_cli

Conn = psycopg.Connection[tuple[Any, ...]]
Run = Callable[..., Result]

GRANTS = Path(__file__).resolve().parents[1] / "contrib" / "grants.sql"
HOST_TABLES = ("schedulers", "jobs", "domains", "organisations")
ACTIVE = ("pending", "initializing", "running", "paused")

# The host's organisation membership, keyed here by role name (Supabase keys it by the signed-in
# user): a role sees the rows of the organisations it is a member of, and no others.
MEMBERSHIP = """
CREATE TABLE public.organisation_members (organisation_id UUID NOT NULL, member NAME NOT NULL);
GRANT SELECT ON public.organisation_members TO PUBLIC;
"""
_MEMBER_ORGS = (
    "(SELECT organisation_id FROM public.organisation_members WHERE member = current_user)"
)
# Each host table's policies, after the real host's: every command limited to the member's
# organisations; domains readable through the member's jobs and open to inserts, no update.
MEMBER_POLICIES = {
    "schedulers": [
        f"CREATE POLICY members ON public.schedulers USING (organisation_id IN {_MEMBER_ORGS}) "
        f"WITH CHECK (organisation_id IN {_MEMBER_ORGS})"
    ],
    "jobs": [
        f"CREATE POLICY members ON public.jobs USING (organisation_id IN {_MEMBER_ORGS}) "
        f"WITH CHECK (organisation_id IN {_MEMBER_ORGS})"
    ],
    "domains": [
        "CREATE POLICY members_read ON public.domains FOR SELECT USING (id IN "
        f"(SELECT domain_id FROM public.jobs WHERE organisation_id IN {_MEMBER_ORGS}))",
        "CREATE POLICY anyone_adds ON public.domains FOR INSERT WITH CHECK (true)",
    ],
    "organisations": [
        f"CREATE POLICY members ON public.organisations USING (id IN {_MEMBER_ORGS})"
    ],
}


@dataclass
class Roles:
    """grants.sql's group roles (named for this test), and login roles: one in each group,
    and an operator with every privilege on the tables but not BYPASSRLS."""

    tick_group: str
    monitor_group: str
    tick: str
    monitor: str
    operator: str
    urls: dict[str, str]


def _role_url(database_url: str, login: str) -> str:
    params = conninfo_to_dict(database_url) | {"user": login, "password": login}
    return as_uri(" ".join(f"{key}={value}" for key, value in params.items()))


def _apply_grants(conn: Conn, roles: Roles, script: str | None = None) -> None:
    text = GRANTS.read_text() if script is None else script
    text = text.replace("schedctl_tick", roles.tick_group)
    text = text.replace("schedctl_monitor", roles.monitor_group)
    conn.execute(text)


def _drop_roles(conn: Conn, *names: str) -> None:
    for name in names:
        role = sql.Identifier(name)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone()
        if exists:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(role))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(sql.SQL("DROP ROLE {}").format(role))


def _create_login(conn: Conn, name: str, *groups: str) -> None:
    statement = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(name), sql.Literal(name)
    )
    if groups:
        statement = sql.SQL("{} IN ROLE {}").format(
            statement, sql.SQL(", ").join(map(sql.Identifier, groups))
        )
    conn.execute(statement)


@pytest.fixture
def admin(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def roles(database_url: str, admin: Conn) -> Iterator[Roles]:
    suffix = uuid.uuid4().hex[:10]
    names = {
        "tick_group": f"schedctl_tick_{suffix}",
        "monitor_group": f"schedctl_monitor_{suffix}",
        "tick": f"schedctl_cron_{suffix}",
        "monitor": f"schedctl_watch_{suffix}",
        "operator": f"schedctl_ops_{suffix}",
    }
    made = Roles(
        **names,
        urls={key: _role_url(database_url, name) for key, name in names.items()},
    )
    try:
        _apply_grants(admin, made)
        _create_login(admin, made.tick, made.tick_group)
        _create_login(admin, made.monitor, made.monitor_group)
        _create_login(admin, made.operator)
        operator = sql.Identifier(made.operator)
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA public, schedctl TO {}").format(operator))
        admin.execute(
            sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA public, schedctl TO {}").format(operator)
        )
        admin.execute(
            sql.SQL("GRANT ALL ON ALL SEQUENCES IN SCHEMA public, schedctl TO {}").format(operator)
        )
        admin.execute(
            sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA schedctl TO {}").format(operator)
        )
        yield made
    finally:
        _drop_roles(admin, made.tick, made.monitor, made.operator)
        _drop_roles(admin, made.tick_group, made.monitor_group)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Run:
    """schedctl in this process, connected with the URL given first: run(url, "tick")."""

    def invoke(url: str, *args: str) -> Result:
        monkeypatch.setenv("SCHEDCTL_DATABASE_URL", url)
        return run_cli(list(args))

    return invoke


@dataclass
class Setup:
    acme: str
    globex: str
    schedulers: dict[str, str]  # domain -> scheduler id


@pytest.fixture
def setup(run: Run, database_url: str, admin: Conn, roles: Roles) -> Setup:
    """Two organisations with a due scheduler each, the membership table (every login role of
    this test a member of Acme only) and a job of each scheduler from an earlier tick."""
    as_admin = partial(run, database_url)
    acme, globex = make_org(as_admin, "Acme"), make_org(as_admin, "Globex")
    schedulers = {
        "acme.com": make_scheduler(as_admin, "acme.com", "--org", acme)["id"],
        "globex.com": make_scheduler(as_admin, "globex.com", "--org", globex)["id"],
    }
    for scheduler_id in schedulers.values():
        make_due(admin, scheduler_id, "6 hours 1 minute")
    ticked = as_admin("tick", "--json")
    assert ticked.code == 0, ticked.stderr
    assert json.loads(ticked.stdout)["created"] == 2
    admin.execute("UPDATE public.jobs SET status = 'completed', completed_at = now()")
    for scheduler_id in schedulers.values():
        make_due(admin, scheduler_id)
    admin.execute("DELETE FROM schedctl.tick_heartbeats")
    admin.execute(MEMBERSHIP)
    for login in (roles.tick, roles.monitor, roles.operator):
        admin.execute("INSERT INTO public.organisation_members VALUES (%s, %s)", [acme, login])
    return Setup(acme, globex, schedulers)


def row_security(conn: Conn, table: str, change: str) -> None:
    """ALTER TABLE public.<table> <change> ROW LEVEL SECURITY (ENABLE, DISABLE, FORCE, ...)."""
    conn.execute(
        sql.SQL("ALTER TABLE {} {} ROW LEVEL SECURITY").format(
            sql.Identifier("public", table), sql.SQL(change)
        )
    )


def protect(conn: Conn, *tables: str) -> None:
    """Row-level security with the host's membership policies on the given tables."""
    for table in tables:
        row_security(conn, table, "ENABLE")
        for policy in MEMBER_POLICIES[table]:
            conn.execute(policy)


def contents(conn: Conn) -> dict[str, tuple[Any, ...]]:
    """Row count and a digest of every table of the host's and of schedctl's."""
    tables = conn.execute(
        "SELECT oid::regclass::text FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace IN ('public'::regnamespace, 'schedctl'::regnamespace) ORDER BY 1"
    ).fetchall()
    out: dict[str, tuple[Any, ...]] = {}
    for (table,) in tables:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t"
            ).format(sql.SQL(table))
        ).fetchone()
        assert row is not None
        out[table] = tuple(row)
    return out


def assert_refused(result: Result, role: str, tables: tuple[str, ...]) -> None:
    """Exit 5, one error line that names row-level security, the role, the tables it filters
    (and no other) and both ways out."""
    message = assert_error(result, 5)
    assert "row-level security" in message, message
    for table in HOST_TABLES:
        named = re.search(rf"\bpublic\.{table}\b", message) is not None
        assert named == (table in tables), (table, message)
    assert role in message, message
    assert "BYPASSRLS" in message, message
    assert "polic" in message, message


def assert_no_ok_heartbeat(conn: Conn) -> None:
    assert conn.execute("SELECT count(*) FROM schedctl.tick_heartbeats WHERE ok").fetchone() == (0,)


def active_jobs(conn: Conn, scheduler_id: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        """
        SELECT j.id, j.status FROM public.jobs j
        JOIN public.schedulers s
          ON s.domain_id = j.domain_id AND s.organisation_id = j.organisation_id
        WHERE s.id = %s AND j.status = ANY (%s)
        ORDER BY j.id
        """,
        [scheduler_id, list(ACTIVE)],
    ).fetchall()


# ---------------------------------------------------------------- (a) refused up front


def test_tick_refuses_when_policies_filter_rows_of_a_host_table(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    """The tick role is a member of Acme: the policies would show it Acme's rows and hide
    Globex's. Each table alone, then all four: refused, and the error names those tables."""
    before = contents(admin)
    for table in HOST_TABLES:
        protect(admin, table)
        result = run(roles.urls["tick"], "tick", "--json")
        assert_refused(result, roles.tick, (table,))
        row_security(admin, table, "DISABLE")
    for table in HOST_TABLES:
        row_security(admin, table, "ENABLE")
    result = run(roles.urls["tick"], "tick", "--json")
    assert_refused(result, roles.tick, HOST_TABLES)
    assert contents(admin) == before
    assert_no_ok_heartbeat(admin)


def test_tick_refuses_whatever_its_options(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    protect(admin, *HOST_TABLES)
    before = contents(admin)
    for args in (["tick"], ["tick", "--quiet"], ["tick", "--dry-run", "--json"]):
        result = run(roles.urls["tick"], *args)
        assert_refused(result, roles.tick, HOST_TABLES)
    assert contents(admin) == before
    assert_no_ok_heartbeat(admin)


def _operator_commands(setup: Setup) -> dict[str, list[str]]:
    """Commands each naming a scheduler or organisation the operator's policies show or hide."""
    return {
        "status": ["status", "--org", "Acme"],
        "status all": ["status", "--all-orgs", "--json"],
        "list": ["list", "--json", "--org", setup.acme],
        "list hidden org": ["list", "--json", "--org", "Globex"],
        "show": ["show", "acme.com", "--json", "--org", "Acme"],
        "show hidden": ["show", setup.schedulers["globex.com"], "--json", "--org", setup.globex],
        "run": ["run", "acme.com", "--json", "--org", setup.acme],
        "run hidden": ["run", "globex.com", "--json", "--org", "Globex"],
        "history": ["history", "acme.com", "--json", "--org", "Acme"],
        "history hidden": ["history", "globex.com", "--org", setup.globex],
        "pause": ["pause", "acme.com", "--reason", "maintenance", "--org", "Acme"],
        "pause hidden": ["pause", setup.schedulers["globex.com"], "--json", "--org", "Globex"],
    }


def test_operator_commands_refuse_rather_than_say_not_found(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    """An operator role with every privilege on the tables, member of Acme only: whether the
    policies would show it the scheduler or organisation it names or hide it (which would
    read as "not found", exit 3), each command is refused and writes nothing."""
    protect(admin, *HOST_TABLES)
    before = contents(admin)
    for name, args in _operator_commands(setup).items():
        result = run(roles.urls["operator"], *args)
        assert result.code == 5, (name, result.code, result.stdout, result.stderr)
        assert_refused(result, roles.operator, HOST_TABLES)
    assert contents(admin) == before


def test_the_monitor_role_is_refused_too(run: Run, admin: Conn, roles: Roles, setup: Setup) -> None:
    protect(admin, "schedulers")
    for args in (["status", "--all-orgs"], ["list", "--json", "--org", "Acme"]):
        result = run(roles.urls["monitor"], *args)
        assert_refused(result, roles.monitor, ("schedulers",))


def test_without_row_level_security_the_same_roles_work(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    """The refusals above come from row-level security, not from missing privileges."""
    shown = run(roles.urls["operator"], "show", "globex.com", "--json", "--org", "Globex")
    assert shown.code == 0, shown.stderr
    status = run(roles.urls["monitor"], "status", "--all-orgs", "--json")
    assert status.code in (0, 1), status.stderr
    assert json.loads(status.stdout)["due"] == 2
    ticked = run(roles.urls["tick"], "tick", "--json")
    assert ticked.code == 0, ticked.stderr
    assert json.loads(ticked.stdout)["created"] == 2


# ---------------------------------------------------------------- (b) BYPASSRLS


def test_bypassrls_on_the_login_role_serves_every_due_scheduler(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    protect(admin, *HOST_TABLES)
    admin.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(roles.tick)))
    result = run(roles.urls["tick"], "tick", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["due"], summary["created"], summary["failed"]) == (2, 2, 0)
    assert {job["scheduler_id"] for job in summary["jobs"]} == set(setup.schedulers.values())
    for scheduler_id in setup.schedulers.values():
        assert len(active_jobs(admin, scheduler_id)) == 1
    assert admin.execute(
        "SELECT count(*) FROM public.schedulers WHERE next_run_at <= now()"
    ).fetchone() == (0,)
    assert admin.execute("SELECT ok, created FROM schedctl.tick_heartbeats").fetchall() == [
        (True, 2)
    ]


def test_bypassrls_on_the_group_role_alone_is_not_enough(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    """PostgreSQL does not pass BYPASSRLS on through membership."""
    protect(admin, *HOST_TABLES)
    admin.execute(sql.SQL("ALTER ROLE {} BYPASSRLS").format(sql.Identifier(roles.tick_group)))
    before = contents(admin)
    result = run(roles.urls["tick"], "tick")
    assert_refused(result, roles.tick, HOST_TABLES)
    assert contents(admin) == before


# ---------------------------------------------------------------- (c) FORCE and the owner


@pytest.fixture
def owner(database_url: str, admin: Conn, setup: Setup) -> Iterator[tuple[str, str]]:
    """A login role (not a superuser) that owns the host's tables and may use schedctl's."""
    name = f"schedctl_owner_{uuid.uuid4().hex[:10]}"
    try:
        _create_login(admin, name)
        role = sql.Identifier(name)
        for table in HOST_TABLES:
            admin.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier("public", table), role)
            )
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA schedctl TO {}").format(role))
        admin.execute(sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA schedctl TO {}").format(role))
        admin.execute(sql.SQL("GRANT ALL ON ALL SEQUENCES IN SCHEMA schedctl TO {}").format(role))
        admin.execute(
            sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA schedctl TO {}").format(role)
        )
        admin.execute(sql.SQL("GRANT SELECT ON public.organisation_members TO {}").format(role))
        yield name, _role_url(database_url, name)
    finally:
        _drop_roles(admin, name)


def test_the_tables_owner_is_not_filtered_without_force(
    run: Run, admin: Conn, owner: tuple[str, str], setup: Setup
) -> None:
    protect(admin, *HOST_TABLES)
    result = run(owner[1], "tick", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["created"] == 2


def test_force_row_level_security_refuses_the_tables_owner(
    run: Run, admin: Conn, owner: tuple[str, str], setup: Setup
) -> None:
    protect(admin, *HOST_TABLES)
    before = contents(admin)
    for table in HOST_TABLES:
        row_security(admin, table, "FORCE")
        result = run(owner[1], "tick", "--json")
        assert_refused(result, owner[0], (table,))
        row_security(admin, table, "NO FORCE")
    assert contents(admin) == before
    assert_no_ok_heartbeat(admin)


def test_force_does_not_stop_a_superuser(
    run: Run, database_url: str, admin: Conn, setup: Setup
) -> None:
    protect(admin, *HOST_TABLES)
    for table in HOST_TABLES:
        row_security(admin, table, "FORCE")
    result = run(database_url, "tick", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["created"] == 2


# ---------------------------------------------------------------- (d) a policy without UPDATE

JOBS_POLICIES = {
    "select and insert only": [
        "CREATE POLICY read_all ON public.jobs FOR SELECT USING (true)",
        "CREATE POLICY add_any ON public.jobs FOR INSERT WITH CHECK (true)",
    ],
    "every command, narrowed by a restrictive policy": [
        "CREATE POLICY all_rows ON public.jobs USING (true) WITH CHECK (true)",
        "CREATE POLICY running_stays ON public.jobs AS RESTRICTIVE FOR UPDATE "
        "USING (status <> 'running')",
    ],
    "every command, for another role": [
        "CREATE POLICY all_rows ON public.jobs TO {monitor_group} USING (true) WITH CHECK (true)"
    ],
}


def _replace_with_active_job(admin: Conn, setup: Setup) -> tuple[str, str]:
    """acme.com due under `replace`, with an active job the host started; Globex's scheduler
    is not due. Returns the scheduler's and the active job's ids."""
    scheduler_id = setup.schedulers["acme.com"]
    admin.execute(
        "UPDATE public.schedulers SET next_run_at = now() + interval '1 hour' WHERE id = %s",
        [setup.schedulers["globex.com"]],
    )
    admin.execute(
        """
        INSERT INTO public.jobs (id, domain_id, organisation_id, status, progress, created_at,
                                 concurrency, find_links, max_pages, source_type)
        SELECT 'host-running', domain_id, organisation_id, 'running', 0.3, now(), 5, TRUE, 0,
               'manual'
        FROM public.schedulers WHERE id = %s
        """,
        [scheduler_id],
    )
    return scheduler_id, "host-running"


def test_jobs_policies_that_would_stop_the_cancel_refuse_the_tick_up_front(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    """Under these policies the tick role could insert the new job but not cancel the active
    one (an UPDATE that RLS filters changes no row, without an error): two active jobs. The
    tick is refused before it writes anything."""
    scheduler_id, active = _replace_with_active_job(admin, setup)
    row_security(admin, "jobs", "ENABLE")
    before = contents(admin)
    for name, policies in JOBS_POLICIES.items():
        for policy in policies:
            admin.execute(policy.format(monitor_group=roles.monitor_group))
        result = run(roles.urls["tick"], "tick", "--json")
        assert result.code == 5, (name, result.stderr)
        assert_refused(result, roles.tick, ("jobs",))
        assert contents(admin) == before, name
        assert active_jobs(admin, scheduler_id) == [(active, "running")], name
        for (policy,) in admin.execute(
            "SELECT polname FROM pg_policy WHERE polrelid = 'public.jobs'::regclass"
        ).fetchall():
            admin.execute(sql.SQL("DROP POLICY {} ON public.jobs").format(sql.Identifier(policy)))
    assert_no_ok_heartbeat(admin)


def test_a_policy_showing_every_row_for_every_command_lets_the_tick_replace(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    scheduler_id, active = _replace_with_active_job(admin, setup)
    row_security(admin, "jobs", "ENABLE")
    admin.execute("CREATE POLICY all_rows ON public.jobs USING (true) WITH CHECK (true)")
    result = run(roles.urls["tick"], "tick", "--json")
    assert result.code == 0, result.stderr
    [made] = json.loads(result.stdout)["jobs"]
    assert active_jobs(admin, scheduler_id) == [(made["job_id"], "pending")]
    assert admin.execute(
        "SELECT status, completed_at IS NOT NULL FROM public.jobs WHERE id = %s", [active]
    ).fetchone() == ("cancelled", True)


# ---------------------------------------------------------------- (e) grants.sql's policies


def uncommented_policies() -> str:
    """grants.sql with its optional block of policies switched on."""
    lines = GRANTS.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"^-- -+ row-level security", line))
    switched = 0
    for i in range(header + 1, len(lines)):
        if re.match(r"^-- (DROP POLICY|CREATE POLICY|\s+USING)", lines[i]):
            lines[i] = lines[i][len("-- ") :]
            switched += 1
    assert switched >= 3 * len(HOST_TABLES), switched
    return "\n".join(lines) + "\n"


def test_grants_sql_policies_let_the_roles_work_under_the_hosts_policies(
    run: Run, admin: Conn, roles: Roles, setup: Setup
) -> None:
    protect(admin, *HOST_TABLES)
    _apply_grants(admin, roles, uncommented_policies())
    _apply_grants(admin, roles, uncommented_policies())  # safe to run again
    scheduler_id, active = _replace_with_active_job(admin, setup)
    make_due(admin, setup.schedulers["globex.com"])

    result = run(roles.urls["tick"], "tick", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["due"], summary["created"], summary["failed"]) == (2, 2, 0)
    assert {job["scheduler_id"] for job in summary["jobs"]} == set(setup.schedulers.values())
    assert admin.execute("SELECT status FROM public.jobs WHERE id = %s", [active]).fetchone() == (
        "cancelled",
    )
    for scheduler_id in setup.schedulers.values():
        assert len(active_jobs(admin, scheduler_id)) == 1
    assert admin.execute("SELECT ok, created FROM schedctl.tick_heartbeats").fetchall() == [
        (True, 2)
    ]

    status = run(roles.urls["monitor"], "status", "--all-orgs", "--json")
    assert status.code == 0, status.stderr
    assert json.loads(status.stdout)["enabled"] == 2
    listed = run(roles.urls["monitor"], "list", "--json", "--org", "Globex")
    assert listed.code == 0, listed.stderr
    assert [s["id"] for s in json.loads(listed.stdout)] == [setup.schedulers["globex.com"]]


def test_a_policy_for_a_group_the_login_does_not_inherit_from_does_not_count(
    run: Run, database_url: str, admin: Conn, roles: Roles, setup: Setup
) -> None:
    """A NOINHERIT login in the tick group, holding tick's privileges itself: grants.sql's
    policies name the group, whose privileges (policies included) the login does not have, so
    the host's membership policies alone decide what it sees (Acme's rows only)."""
    login = f"schedctl_noinherit_{uuid.uuid4().hex[:10]}"
    try:
        # NOINHERIT before the membership is granted: from PostgreSQL 16 on, a membership
        # takes its inheritance from the member's attribute at the time of the grant.
        _create_login(admin, login)
        admin.execute(sql.SQL("ALTER ROLE {} NOINHERIT").format(sql.Identifier(login)))
        admin.execute(
            sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(roles.tick_group), sql.Identifier(login)
            )
        )
        script = GRANTS.read_text().replace("schedctl_tick", login)
        _apply_grants(admin, roles, script)
        admin.execute(
            "INSERT INTO public.organisation_members VALUES (%s, %s)", [setup.acme, login]
        )
        protect(admin, *HOST_TABLES)
        _apply_grants(admin, roles, uncommented_policies())
        before = contents(admin)
        result = run(_role_url(database_url, login), "tick", "--json")
        assert_refused(result, login, HOST_TABLES)
        assert contents(admin) == before
    finally:
        _drop_roles(admin, login)
