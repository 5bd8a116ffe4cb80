"""Every JSON document schedctl prints, in the shapes of the command-line contract (SPEC §5):
exactly one document on stdout, times in RFC 3339 UTC."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring_ascii
from typing import IO, TYPE_CHECKING, Any

from schedctl.models import (
    AuditEntry,
    Job,
    Organisation,
    Scheduler,
    plain,
    public_fields,
    rfc3339,
)

if TYPE_CHECKING:
    from schedctl.apply import Item, Plan
    from schedctl.doctor import Check
    from schedctl.hooks import Hooks
    from schedctl.migrate import Outcome
    from schedctl.organisations import Deleted
    from schedctl.pgcron import Removed, Report
    from schedctl.schedulers import NextRun
    from schedctl.timeline import Timeline


def emit(doc: Any, out: IO[str] | None = None) -> None:
    """Exactly one JSON document on stdout."""
    stream = out or sys.stdout
    stream.write(json.dumps(doc, ensure_ascii=False) + "\n")


def record(found: Scheduler | Job | AuditEntry | Organisation) -> dict[str, Any]:
    """A record in the JSON shape of the command-line contract: its public fields."""
    return {name: plain(value) for name, value in public_fields(found).items()}


def scheduler(found: Scheduler, changed: bool | None = None) -> dict[str, Any]:
    """A scheduler as `show` prints it; after a change, whether anything changed."""
    return record(found) | ({} if changed is None else {"changed": changed})


def _last_run(found: Scheduler) -> dict[str, Any] | None:
    last = found.last_run
    if last is None:
        return None
    return {"job_id": last.job_id, "status": last.status, "at": rfc3339(last.created_at)}


def scheduler_list(found: Iterable[Scheduler]) -> list[dict[str, Any]]:
    """`list`: the schedulers, each with the last job schedctl made for it."""
    return [record(s) | {"last_run": _last_run(s)} for s in found]


def scheduler_shown(
    found: Scheduler, local_runs: Sequence[NextRun], last_job: Job | None
) -> dict[str, Any]:
    """`show`: a scheduler, its next run times (also in its zone) and its last job."""
    return record(found) | {
        "next_runs": [rfc3339(run.at) for run in local_runs],
        "next_runs_local": [
            {
                "at": rfc3339(run.at),
                "local_time": run.local_time.isoformat(timespec="seconds"),
                "utc_offset_seconds": run.utc_offset_seconds,
                "dst_day": run.dst_day,
            }
            for run in local_runs
        ],
        "last_job": last_job and record(last_job),
    }


def scheduler_deleted(found: Scheduler) -> dict[str, Any]:
    """`delete`."""
    return {"id": str(found.id), "deleted": True}


def organisation(found: Organisation, changed: bool | None = None) -> dict[str, Any]:
    """An organisation; after a rename, whether anything changed."""
    return record(found) | ({} if changed is None else {"changed": changed})


def organisation_deleted(deleted: Deleted) -> dict[str, Any]:
    """`org delete`: the organisation, and what went with it."""
    return {
        "id": str(deleted.organisation.id),
        "name": deleted.organisation.name,
        "deleted": True,
        "schedulers_deleted": deleted.schedulers,
        "jobs_deleted": deleted.jobs,
    }


def migration(outcome: Outcome, dry_run: bool) -> dict[str, Any]:
    """`migrate`: what it applied (or would), and where."""
    return {
        "dry_run": dry_run,
        "migrations": outcome.migrations,
        "removed_from_host_tables": outcome.released,
        "completed_on_host_tables": outcome.completed,
        "active_jobs_index_created": outcome.index_created,
        "active_jobs_index_advised": outcome.index_advised,
        "connection": outcome.connection,
    }


def hooks(found: Hooks) -> dict[str, Any]:
    """`hooks show`: each hook's value, null where schedctl's default applies."""
    return found.settings() | {
        "updated_at": found.updated_at and rfc3339(found.updated_at),
        "updated_by": found.updated_by,
    }


def _moment(value: Any) -> str | None:
    return rfc3339(value) if value is not None else None


def pg_cron(report: Report) -> dict[str, Any]:
    """`pg-cron install` and `pg-cron show`: where pg_cron runs, the job, its latest runs."""
    job = report.job
    return {
        "pg_cron": {"database": report.place.cron_database, "version": report.place.version},
        "job": {
            "jobid": job["jobid"],
            "name": job["jobname"],
            "schedule": job["schedule"],
            "command": job["command"],
            "database": job["database"],
            "role": job["username"],
            "active": job["active"],
        },
        "runs": [
            {
                "runid": run["runid"],
                "status": run["status"],
                "message": run["return_message"],
                "start_time": _moment(run["start_time"]),
                "end_time": _moment(run["end_time"]),
                "pid": run["job_pid"],
            }
            for run in report.runs
        ],
    }


def pg_cron_removed(removed: Removed) -> dict[str, Any]:
    """`pg-cron remove`."""
    return {"name": removed.name, "database": removed.database, "removed": True}


def plan(found: Plan, dry_run: bool) -> dict[str, Any]:
    """`apply`: what it did (or, dry, would do)."""

    def items(listed: Sequence[Item], key: str | None) -> list[dict[str, Any]]:
        return [
            {
                "organisation_id": str(item.organisation_id),
                "domain": item.domain,
                "id": str(item.id) if item.id else None,
            }
            | ({key: item.changes} if key else {})
            for item in listed
        ]

    return {
        "source": found.source,
        "organisations": [{"id": str(o.id), "name": o.name} for o in found.organisations],
        "prune": found.prune,
        "written": found.written,
        "in_sync": found.in_sync,
        "drift": found.drift,
        "created": items(found.created, "fields"),
        "changed": items(found.changed, "changes"),
        "adopted": items(found.adopted, "changes"),
        "deleted": items(found.deleted, None),
        "kept": items(found.kept, None),
        "unmanaged": items(found.unmanaged, None),
        "unchanged": found.unchanged,
        "dry_run": dry_run,
    }


def tick_job(entry: dict[str, Any]) -> str:
    """One job of tick's document, as json.dumps would write it, formatted directly: this
    runs once per job, tens of thousands of times in a large pass (ids and times need no
    escaping)."""
    job_id = "null" if entry["job_id"] is None else f'"{entry["job_id"]}"'
    # The string escaping json.dumps applies (ensure_ascii), without its per-call set-up.
    return (
        f'{{"scheduler_id": "{entry["scheduler_id"]}", '
        f'"job_id": {job_id}, '
        f'"organisation_id": "{entry["organisation_id"]}", '
        f'"domain": {encode_basestring_ascii(entry["domain"])}, '
        f'"slot": "{rfc3339(entry["slot"])}", '
        f'"next_run_at": "{rfc3339(entry["next_run_at"])}"}}'
    )


def tick_head(counts: dict[str, int]) -> str:
    """The start of tick's document: its counts, then its jobs (tick_job) follow."""
    return json.dumps(counts)[:-1] + ', "jobs": ['


def tick_tail(errors: list[dict[str, Any]]) -> str:
    """The end of tick's document: its errors."""
    return f'], "errors": {json.dumps(errors)}}}\n'


def timeline(found: Timeline) -> dict[str, Any]:
    """`timeline`: the window's start, the bucket size, each bucket with its runs per
    organisation id, the mean per bucket and the starts of the herds."""
    return {
        "from": rfc3339(found.now),
        "bucket_seconds": int(found.bucket.total_seconds()),
        "buckets": [
            {
                "start": rfc3339(bucket.start),
                "runs": bucket.runs,
                "organisations": {str(org): runs for org, runs in bucket.organisations.items()},
            }
            for bucket in found.buckets
        ],
        "mean": round(found.mean, 3),
        "herds": [rfc3339(bucket.start) for bucket in found.herds],
    }


def selection(changed: Sequence[Scheduler], *, dry_run: bool) -> dict[str, Any]:
    """`pause`/`resume` with --all or --match: each scheduler changed (or that would be), as
    `show` prints it."""
    return {"dry_run": dry_run, "schedulers": [record(s) for s in changed]}


def doctor(checks: Sequence[Check], *, ok: bool) -> dict[str, Any]:
    """`doctor`: whether nothing failed, and each check with its remedy."""
    return {
        "ok": ok,
        "checks": [
            {"name": c.name, "status": c.status, "detail": c.detail, "remedy": c.remedy}
            for c in checks
        ],
    }


def jobs(found: Iterable[Job]) -> list[dict[str, Any]]:
    """`history`: the jobs, newest first (without a REF, each with its domain)."""
    return [record(job) for job in found]


def audit_log(entries: Iterable[AuditEntry]) -> list[dict[str, Any]]:
    """`log`: the audit entries, newest first, each with where it came from (cli, apply,
    tick)."""
    return [record(entry) | {"source": entry.source} for entry in entries]
