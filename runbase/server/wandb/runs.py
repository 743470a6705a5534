"""Projects and runs in W&B's shapes: ``project``/``model``/``models``, a project's runs
(filters and order as the native API takes them), a run's fields, and ``upsertBucket``, which
creates, continues and updates runs.

A W&B config is ``{key: {"value": v, "desc": ...}}``; runbase keeps the values. The client's
own ``_wandb`` entry (code, telemetry) is kept out of the user's config, in the run's metadata
under ``_wandb``, and handed back in the config it reads.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from ariadne import MutationType, ObjectType, QueryType

from runbase.backend.base import (
    RUN_STATES,
    UNSET,
    NewRun,
    Page,
    ProjectRecord,
    RunChanges,
    RunPath,
    RunQuery,
    RunRecord,
    SweepRecord,
)
from runbase.errors import InvalidInput, NotFound, Unsupported
from runbase.server.wandb import ids
from runbase.server.wandb.context import Context, Info
from runbase.server.wandb.viewer import user_node

DEFAULT_PROJECT = "uncategorized"
WANDB_KEY = "_wandb"
RUN_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
# What the client sends beside the run's fields, kept in its metadata.
METADATA_INPUTS = {"commit": "commit", "host": "host", "jobProgram": "program", "jobRepo": "repo"}

query = QueryType()
mutation = MutationType()
project_type = ObjectType("Project")
run_type = ObjectType("Run")
sweep_type = ObjectType("Sweep")


@dataclass(frozen=True)
class ProjectNode:
    """A project as the resolvers pass it on: its name, and its record when it is stored."""

    entity: str
    name: str
    record: ProjectRecord | None = None


def context(info: Info) -> Context:
    return info.context


# projects
@query.field("project")
@query.field("model")
def resolve_project(
    _: None, info: Info, name: str | None = None, entityName: str | None = None
) -> ProjectNode | None:
    ctx = context(info)
    entity = entityName or ctx.user
    name = name or DEFAULT_PROJECT
    try:
        return ProjectNode(entity, name, ctx.backend.get_project(entity, name))
    except NotFound:
        if not _may_read(ctx, entity):
            return None
        return ProjectNode(entity, name)  # runs of it may arrive; an empty project until then


def _may_read(ctx: Context, entity: str) -> bool:
    who = ctx.principal
    return who.admin or entity == who.user or entity in who.teams


@query.field("models")
def resolve_models(
    _: None,
    info: Info,
    entityName: str | None = None,
    after: str | None = None,
    first: int | None = None,
) -> dict[str, Any]:
    ctx = context(info)
    entity = entityName or ctx.user
    try:
        page = ctx.backend.list_projects(entity, _page_size(first), after)
    except NotFound:
        page = Page([], None)
    nodes = [ProjectNode(record.entity, record.name, record) for record in page.items]
    return connection(nodes, page.next_cursor)


def connection(nodes: list[Any], next_cursor: str | None) -> dict[str, Any]:
    """A relay connection over one page: every edge's cursor is the page's next cursor (the
    client only ever continues from the last one)."""
    cursor = next_cursor or ""
    return {
        "edges": [{"node": node, "cursor": cursor} for node in nodes],
        "pageInfo": {
            "__typename": "PageInfo",
            "startCursor": None,
            "endCursor": next_cursor,
            "hasNextPage": next_cursor is not None,
            "hasPreviousPage": False,
        },
    }


def _page_size(first: int | None, default: int = 50, limit: int = 1000) -> int:
    if first is None:
        return default
    if first < 1:
        raise InvalidInput(f"first must be a positive integer, not {first}")
    return min(first, limit)


@project_type.field("id")
def resolve_project_id(node: ProjectNode, info: Info) -> str:
    return ids.global_id("Project", node.entity, node.name)


@project_type.field("internalId")
def resolve_project_internal_id(node: ProjectNode, info: Info) -> str:
    return ids.internal_id(node.entity, node.name)


project_type.set_field("name", lambda node, info: node.name)
project_type.set_field("entityName", lambda node, info: node.entity)
project_type.set_field("isBenchmark", lambda node, info: False)
project_type.set_field("user", lambda node, info: None)
project_type.set_field("createdAt", lambda node, info: node.record and node.record.created_at)


@project_type.field("entity")
def resolve_project_entity(node: ProjectNode, info: Info) -> dict[str, Any]:
    from runbase.server.wandb.viewer import entity_node

    return entity_node(node.entity, is_team=node.entity != context(info).user)


@project_type.field("readOnly")
def resolve_project_read_only(node: ProjectNode, info: Info) -> bool:
    ctx = context(info)
    return ctx.principal.read_only or not _may_read(ctx, node.entity)


@project_type.field("runCount")
def resolve_run_count(node: ProjectNode, info: Info, filters: Any = None) -> int:
    return context(info).backend.count_runs(node.entity, node.name, _filters(filters))


def _filters(value: Any) -> dict[str, Any]:
    """A W&B filter (the JSONString already parsed) as the native API takes it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"filters must be a JSON object, not {value!r}")
    return value


@project_type.field("runs")
def resolve_runs(
    node: ProjectNode,
    info: Info,
    filters: Any = None,
    after: str | None = None,
    first: int | None = None,
    order: str | None = None,
) -> dict[str, Any]:
    query = RunQuery(
        node.entity,
        node.name,
        filters=_filters(filters),
        order=order or "-created_at",
        per_page=_page_size(first),
        cursor=after or None,
    )
    page = context(info).backend.query_runs(query)
    return connection(page.items, page.next_cursor)


@project_type.field("run")
@project_type.field("bucket")
def resolve_run(
    node: ProjectNode, info: Info, name: str, missingOk: bool | None = None
) -> RunRecord | None:
    try:
        return context(info).backend.get_run(RunPath(node.entity, node.name, name))
    except NotFound:
        return None


@project_type.field("sweep")
def resolve_sweep(node: ProjectNode, info: Info, sweepName: str) -> Any:
    try:
        return context(info).backend.get_sweep(node.entity, node.name, sweepName)
    except NotFound:
        return None


# sweeps
@sweep_type.field("id")
def resolve_sweep_id(sweep: SweepRecord, info: Info) -> str:
    return ids.global_id("Sweep", sweep.entity, sweep.project, sweep.sweep_id)


sweep_type.set_field("name", lambda sweep, info: sweep.sweep_id)
sweep_type.set_field("displayName", lambda sweep, info: sweep.name or sweep.sweep_id)
sweep_type.set_field("method", lambda sweep, info: sweep.config.get("method"))
sweep_type.set_field("state", lambda sweep, info: sweep.state.upper())
sweep_type.set_field("description", lambda sweep, info: sweep.config.get("description"))
sweep_type.set_field("createdAt", lambda sweep, info: sweep.created_at)
sweep_type.set_field("updatedAt", lambda sweep, info: sweep.created_at)
sweep_type.set_field("runCountExpected", lambda sweep, info: None)
sweep_type.set_field("controllerRunName", lambda sweep, info: None)


@sweep_type.field("config")
def resolve_sweep_config(sweep: SweepRecord, info: Info) -> str:
    return yaml.safe_dump(sweep.config, sort_keys=False)


@sweep_type.field("runCount")
def resolve_sweep_run_count(sweep: SweepRecord, info: Info) -> int:
    filters = {"sweep": sweep.sweep_id}
    return context(info).backend.count_runs(sweep.entity, sweep.project, filters)


@sweep_type.field("bestLoss")
def resolve_best_loss(sweep: SweepRecord, info: Info) -> float | None:
    metric = sweep.config.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        return None
    name = metric["name"]
    sign = "+" if metric.get("goal", "minimize") == "minimize" else "-"
    query = RunQuery(
        sweep.entity,
        sweep.project,
        filters={"sweep": sweep.sweep_id, f"summary_metrics.{name}": {"$exists": True}},
        order=f"{sign}summary_metrics.{name}",
        per_page=1,
    )
    runs = context(info).backend.query_runs(query).items
    best = runs[0].summary.get(name) if runs else None
    return float(best) if isinstance(best, (int, float)) else None


# runs
@run_type.field("id")
def resolve_run_id(run: RunRecord, info: Info) -> str:
    return ids.run_id(run.path)


run_type.set_field("name", lambda run, info: run.run_id)
run_type.set_field("displayName", lambda run, info: run.display_name)
run_type.set_field("description", lambda run, info: run.notes)
run_type.set_field("notes", lambda run, info: run.notes)
run_type.set_field("tags", lambda run, info: list(run.tags))
run_type.set_field("state", lambda run, info: run.state)
run_type.set_field("summaryMetrics", lambda run, info: run.summary)
run_type.set_field("systemMetrics", lambda run, info: run.system_metrics)
run_type.set_field("group", lambda run, info: run.group)
run_type.set_field("groupName", lambda run, info: run.group)
run_type.set_field("jobType", lambda run, info: run.job_type)
run_type.set_field("commit", lambda run, info: _commit(run))
run_type.set_field("host", lambda run, info: run.metadata.get("host"))
run_type.set_field("readOnly", lambda run, info: run.read_only)
run_type.set_field("createdAt", lambda run, info: run.created_at)
run_type.set_field("updatedAt", lambda run, info: run.updated_at)
run_type.set_field("heartbeatAt", lambda run, info: run.heartbeat_at)
run_type.set_field("sweepName", lambda run, info: run.sweep)
run_type.set_field("project", lambda run, info: ProjectNode(run.entity, run.project))
run_type.set_field("user", lambda run, info: user_node(run.username))
run_type.set_field("historyLineCount", lambda run, info: run.history_line_count)
run_type.set_field("eventsLineCount", lambda run, info: run.system_line_count)


@run_type.field("projectId")
def resolve_project_id_of_run(run: RunRecord, info: Info) -> str:
    return ids.internal_id(run.entity, run.project)


def _commit(run: RunRecord) -> str | None:
    commit = run.metadata.get("commit")
    if commit is None and isinstance(run.metadata.get("git"), dict):
        commit = run.metadata["git"].get("commit")
    return commit if isinstance(commit, str) else None


@run_type.field("config")
def resolve_config(run: RunRecord, info: Info) -> dict[str, Any]:
    return wrap_config(run)


def wrap_config(run: RunRecord) -> dict[str, Any]:
    """The run's config as W&B writes it, ``_wandb`` included when the client sent one."""
    config = {key: {"value": value, "desc": None} for key, value in run.config.items()}
    internal = run.metadata.get(WANDB_KEY)
    if isinstance(internal, dict):
        config[WANDB_KEY] = {"value": internal, "desc": None}
    return config


@run_type.field("wandbConfig")
def resolve_wandb_config(
    run: RunRecord, info: Info, keys: list[str] | None = None
) -> dict[str, Any]:
    """The client's ``_wandb`` entries named by ``keys``. ``t`` (its telemetry) is always
    there: the client takes a run without it for one it may not resume."""
    internal = run.metadata.get(WANDB_KEY)
    internal = {"t": {}, **(internal if isinstance(internal, dict) else {})}
    return {key: internal[key] for key in (keys or internal) if key in internal}


# creating and changing runs
@mutation.field("upsertBucket")
def resolve_upsert_bucket(_: None, info: Info, input: dict[str, Any]) -> Any:
    ctx = context(info)
    if input.get("id"):
        path = ids.run_path(input["id"])
        return {"bucket": ctx.backend.update_run(path, _changes(input)), "inserted": False}
    entity = input.get("entityName") or ctx.user
    project = input.get("modelName") or DEFAULT_PROJECT
    path = RunPath(entity, project, input.get("name") or new_run_id())
    existing = _find(ctx, path)
    config, internal = split_config(input.get("config"))
    metadata = dict(existing.metadata) if existing else {}
    if internal is not None:
        metadata[WANDB_KEY] = internal
    for name, key in METADATA_INPUTS.items():
        if input.get(name) is not None:
            metadata[key] = input[name]
    new = NewRun(
        display_name=input.get("displayName"),
        config=config or {},
        tags=tuple(input.get("tags") or ()),
        notes=_notes(input),
        group=input.get("groupName"),
        job_type=input.get("jobType"),
        sweep=input.get("sweep"),
        metadata=metadata,
        resume="allow",
    )
    run = ctx.backend.create_run(path, new)
    later = RunChanges(
        summary=_document(input.get("summaryMetrics"), "summaryMetrics"),
        state=_state(input.get("state")),
    )
    if later:
        run = ctx.backend.update_run(path, later)
    return {"bucket": run, "inserted": existing is None}


# The state changes W&B's updateRunState allows that runbase has states for ("pending" and
# "preempted" it has not): a run still marked running may be marked failed.
STATE_CHANGES = {("running", "failed")}


@mutation.field("updateRunState")
def resolve_update_run_state(_: None, info: Info, input: dict[str, Any]) -> dict[str, bool]:
    ctx = context(info)
    path = ids.run_path(input["id"])
    state = input["state"]
    run = ctx.backend.get_run(path)
    if (run.state, state) not in STATE_CHANGES:
        raise InvalidInput(f"invalid state transition from {run.state} to {state}")
    ctx.backend.update_run(path, RunChanges(state=state))
    return {"success": True}


@mutation.field("deleteRun")
def resolve_delete_run(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    """Delete the run; a run already gone is no error (the client may ask twice). Artifacts
    the run logged stay: deleting them with it is refused."""
    ctx = context(info)
    path = ids.run_path(input["id"])
    try:
        if (
            input.get("deleteArtifacts")
            and ctx.backend.artifacts().of_run(path, False, 1, None).items
        ):
            raise Unsupported("runbase does not delete artifacts with their run (deleteArtifacts)")
        ctx.backend.delete_run(path)
    except NotFound:
        pass
    return {"clientMutationId": input.get("clientMutationId")}


@mutation.field("stopRun")
def resolve_stop_run(_: None, info: Info, input: dict[str, Any]) -> None:
    raise Unsupported("runbase cannot stop a run from the server (stopRun)")


def _find(ctx: Context, path: RunPath) -> RunRecord | None:
    try:
        return ctx.backend.get_run(path)
    except NotFound:
        return None


def new_run_id() -> str:
    return "".join(secrets.choice(RUN_ID_ALPHABET) for _ in range(8))


def _changes(input: dict[str, Any]) -> RunChanges:
    """What an ``upsertBucket`` of an existing run (by ``id``) sets: null leaves unchanged."""
    config, _ = split_config(input.get("config"))
    notes = _notes(input)
    return RunChanges(
        display_name=_or_unset(input.get("displayName")),
        tags=UNSET if input.get("tags") is None else tuple(input["tags"]),
        notes=UNSET if notes is None else notes,
        group=_or_unset(input.get("groupName")),
        job_type=_or_unset(input.get("jobType")),
        config=UNSET if config is None else config,
        summary=_document(input.get("summaryMetrics"), "summaryMetrics"),
        state=_state(input.get("state")),
    )


def _or_unset(value: Any) -> Any:
    return UNSET if value is None else value


def _notes(input: dict[str, Any]) -> str | None:
    notes = input.get("notes")
    return input.get("description") if notes is None else notes


def _state(value: Any) -> Any:
    if value is None:
        return UNSET
    if value not in RUN_STATES:
        raise InvalidInput(f"state must be one of {RUN_STATES}, not {value!r}")
    return value


def _document(value: Any, name: str) -> Any:
    if value is None:
        return UNSET
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a JSON object, not {orjson.dumps(value)[:100]!r}")
    return value


def split_config(value: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A W&B config as the user's config (values unwrapped) and the client's ``_wandb``
    entry; None for what is not there."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise InvalidInput("config must be a JSON object of {key: {'value': ...}}")
    config: dict[str, Any] = {}
    internal = None
    for key, item in value.items():
        unwrapped = item.get("value") if isinstance(item, dict) and "value" in item else item
        if key == WANDB_KEY:
            internal = unwrapped if isinstance(unwrapped, dict) else None
        else:
            config[key] = unwrapped
    return config, internal


bindables = [query, mutation, project_type, run_type, sweep_type]
