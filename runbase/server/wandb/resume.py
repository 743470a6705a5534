"""What the client asks before it continues a run (``RunResumeStatus``): how many lines of
history, system metrics and console output the server holds, and the last row of each."""

from __future__ import annotations

from ariadne import ObjectType

from runbase.backend.base import RunRecord
from runbase.server.wandb.context import Info
from runbase.server.wandb.file_stream import output_line_count
from runbase.server.wandb.runs import context

run_type = ObjectType("Run")


@run_type.field("logLineCount")
def resolve_log_line_count(run: RunRecord, info: Info) -> int:
    return output_line_count(context(info).backend, run.path)


@run_type.field("historyTail")
def resolve_history_tail(run: RunRecord, info: Info) -> list[str]:
    return _tail(run, info, "default", run.history_line_count)


@run_type.field("eventsTail")
def resolve_events_tail(run: RunRecord, info: Info) -> list[str]:
    return _tail(run, info, "system", run.system_line_count)


def _tail(run: RunRecord, info: Info, stream: str, count: int) -> list[str]:
    """The stream's last row as JSON text, in a list (empty for an empty stream); the field
    is a JSON string of that list."""
    if count == 0:
        return []
    rows = context(info).backend.sample_history(run.path, stream, 2, None)
    return [row if isinstance(row, str) else str(row) for row in rows[-1:]]


bindables = [run_type]
