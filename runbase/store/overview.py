"""What the dashboard lists: entities, projects with their last activity, the distinct leaf
keys of a project's config or summary documents, and its metrics."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import func, select

from runbase.store.engine import Store
from runbase.store.schema import entities, key_sets, projects, runs


def entity_names(store: Store) -> list[str]:
    """Every entity's name, in name order."""
    with store.read() as conn:
        return list(conn.execute(select(entities.c.name).order_by(entities.c.name)).scalars())


def project_activity(store: Store) -> list[dict[str, Any]]:
    """Every project with its run count and last activity (its runs' newest ``updated_at``
    or ``heartbeat_at``; None without runs), newest first."""
    stats = (
        select(
            runs.c.project_id,
            func.count().label("run_count"),
            func.max(runs.c.updated_at).label("updated"),
            func.max(runs.c.heartbeat_at).label("heartbeat"),
        )
        .group_by(runs.c.project_id)
        .subquery()
    )
    stmt = select(
        entities.c.name.label("entity"),
        projects.c.name,
        func.coalesce(stats.c.run_count, 0).label("run_count"),
        stats.c.updated,
        stats.c.heartbeat,
    ).select_from(
        projects.join(entities, projects.c.entity_id == entities.c.id).outerjoin(
            stats, stats.c.project_id == projects.c.id
        )
    )
    with store.read() as conn:
        found = [dict(row._mapping) for row in conn.execute(stmt)]
    for row in found:
        times = [t for t in (row.pop("updated"), row.pop("heartbeat")) if t is not None]
        row["last_activity"] = max(times) if times else None
    found.sort(key=lambda row: (-(row["last_activity"] or 0), row["entity"], row["name"]))
    return found


def keys_stamp(store: Store, entity: str, project: str) -> tuple[int, float]:
    """The project's run count and newest ``updated_at``: its documents changed when it did."""
    stmt = (
        select(func.count(), func.coalesce(func.max(runs.c.updated_at), 0.0))
        .select_from(runs.join(projects).join(entities))
        .where(entities.c.name == entity, projects.c.name == project)
    )
    with store.read() as conn:
        count, newest = conn.execute(stmt).one()
    return int(count), float(newest)


def document_keys(store: Store, entity: str, project: str, column: str) -> set[str]:
    """The dotted leaf keys of the ``column`` document (``config`` or ``summary``) of every
    run of the project; a dot or backslash inside a key is escaped with a backslash."""
    stmt = (
        select(runs.c[column])
        .select_from(runs.join(projects).join(entities))
        .where(entities.c.name == entity, projects.c.name == project)
    )
    found: set[str] = set()
    with store.read() as conn:
        for document in conn.execute(stmt).scalars():
            _leaves(document, "", found)
    return found


def _leaves(value: Any, prefix: str, found: set[str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            escaped = str(key).replace("\\", "\\\\").replace(".", "\\.")
            _leaves(item, prefix + escaped + ".", found)
    elif prefix:
        found.add(prefix[:-1])


def metric_keys(store: Store, entity: str, project: str) -> set[str]:
    """The keys the project's runs log to their history whose last value (in the run's
    summary) is a number: what a chart can draw. Not text, media or histograms, nor a summary
    value never logged; not the keys starting with ``_`` (step, runtime, timestamp)."""
    in_project = (entities.c.name == entity, projects.c.name == project)
    logged = (
        select(key_sets.c.run_pk, key_sets.c.key_list)
        .select_from(key_sets.join(runs).join(projects).join(entities))
        .where(key_sets.c.stream == 0, *in_project)
    )
    summaries = (
        select(runs.c.storage_id, runs.c.summary)
        .select_from(runs.join(projects).join(entities))
        .where(*in_project)
    )
    keys_of: defaultdict[int, set[str]] = defaultdict(set)
    found: set[str] = set()
    with store.read() as conn:
        for pk, key_list in conn.execute(logged):
            keys_of[pk].update(orjson.loads(key_list))
        for pk, summary in conn.execute(summaries):
            for key in keys_of.get(pk, ()):
                if key not in found and not key.startswith("_") and _number(summary.get(key)):
                    found.add(key)
    return found


def _number(value: Any) -> bool:
    if type(value) in (int, float):
        return True
    return type(value) is dict and len(value) == 1 and "$float" in value  # NaN, Infinity
