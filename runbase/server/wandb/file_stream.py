"""``POST /files/{entity}/{project}/{run_id}/file_stream``: what a live W&B run streams.

Each file in the body comes with ``offset``, the line index of its first content line:
history rows (``wandb-history.jsonl``) and system metrics (``wandb-events.jsonl``) are stored
at those indexes, so a batch sent again is stored once; ``wandb-summary.json`` is the whole
summary and replaces it; ``output.log`` is rewritten from its offset on, each line without the
time the client puts before it. ``complete`` with ``exitcode`` ends the run: finished on 0,
crashed otherwise. Any other post is a heartbeat.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runbase import documents
from runbase.backend.base import Backend, HistoryRow, RunChanges, RunPath
from runbase.errors import InvalidInput, NotFound, RunbaseError
from runbase.server.auth import authorize
from runbase.server.limits import read_body

PATH = "/files/{entity}/{project}/{run_id}/file_stream"
HISTORY, EVENTS, SUMMARY, OUTPUT = (
    "wandb-history.jsonl",
    "wandb-events.jsonl",
    "wandb-summary.json",
    "output.log",
)
STREAMS = {HISTORY: "default", EVENTS: "system"}
# A console line as streamed: "[ERROR ]<ISO time> <text>"; the file keeps the text, as the
# output.log the client uploads at the end does.
CONSOLE_PREFIX = re.compile(r"(?:ERROR )?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)? ?")


async def file_stream(request: Request) -> Response:
    refused = await authorize(request)
    if refused is not None:
        return refused
    path = RunPath(
        request.path_params["entity"], request.path_params["project"], request.path_params["run_id"]
    )
    try:
        body = _body(await read_body(request, request.app.state.max_body_size))
        await run_in_threadpool(apply, request.state.backend, path, body)
    except RunbaseError as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
    return JSONResponse({"exitcode": None, "limits": {}})


def _body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    files = body.get("files")
    if files is not None and not isinstance(files, dict):
        raise InvalidInput("'files' must be an object of {name: {offset, content}}")
    for name, chunk in (files or {}).items():
        if not isinstance(chunk, dict):
            raise InvalidInput(f"files.{name} must be an object with offset and content")
        offset, content = chunk.get("offset", 0), chunk.get("content", [])
        if type(offset) is not int or offset < 0:
            raise InvalidInput(f"files.{name}.offset must be a line index, not {offset!r}")
        if not isinstance(content, list) or not all(isinstance(line, str) for line in content):
            raise InvalidInput(f"files.{name}.content must be a list of strings")
    return body


def apply(backend: Backend, path: RunPath, body: dict[str, Any]) -> None:
    """Store what one file_stream post carries. Everything is parsed before anything is
    written, so a malformed post writes nothing."""
    files: dict[str, dict[str, Any]] = body.get("files") or {}
    rows = {
        stream: history_rows(name, files[name]["offset"], files[name]["content"])
        for name, stream in STREAMS.items()
        if files.get(name, {}).get("content")
    }
    summary = _summary(files.get(SUMMARY))
    run = backend.get_run(path)  # NotFound before any write
    for stream, found in rows.items():
        backend.append_history(path, stream, found, {})
    if summary is not None:
        backend.update_run(path, RunChanges(summary=summary))
    if OUTPUT in files and files[OUTPUT].get("content"):
        _write_output(backend, path, files[OUTPUT]["offset"], files[OUTPUT]["content"])
    if body.get("complete"):
        exit_code = body.get("exitcode")
        if exit_code is not None and type(exit_code) is not int:
            raise InvalidInput(f"exitcode must be an integer, not {exit_code!r}")
        if run.state == "running" or run.exit_code != exit_code:
            state = "finished" if not exit_code else "crashed"
            backend.finish_run(path, state, exit_code)
    elif not rows and run.state in ("running", "crashed"):  # storing rows beats the heart too
        backend.heartbeat(path)


def history_rows(name: str, offset: int, lines: list[str]) -> list[HistoryRow]:
    """The content lines of ``name`` as rows at indexes ``offset``, ``offset + 1``, ..."""
    rows = []
    for number, line in enumerate(lines):
        idx = offset + number
        try:
            row = documents.decode_value(line)
        except ValueError as exc:
            raise InvalidInput(f"{name} line {idx} is not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise InvalidInput(f"{name} line {idx} must be a JSON object")
        if name == EVENTS:
            row.pop("_wandb", None)
        step = row.get("_step", idx) if name == HISTORY else idx
        if type(step) is not int:
            step = int(step) if isinstance(step, float) and step.is_integer() else idx
        keys = tuple(sorted(documents.leaf_keys(row)))
        rows.append(HistoryRow(idx, step, keys, documents.encode_row(row)))
    return rows


def _summary(chunk: dict[str, Any] | None) -> dict[str, Any] | None:
    if not chunk or not chunk.get("content"):
        return None
    line = chunk["content"][-1]
    try:
        summary = documents.decode_value(line)
    except ValueError as exc:
        raise InvalidInput(f"{SUMMARY} is not JSON: {exc}") from None
    if not isinstance(summary, dict):
        raise InvalidInput(f"{SUMMARY} must be a JSON object")
    return summary


def _write_output(backend: Backend, path: RunPath, offset: int, lines: list[str]) -> None:
    """Console lines from line ``offset`` on: lines before it are kept, lines after it are
    replaced (the client rewrites a line a carriage return changed)."""
    try:
        kept = b"".join(backend.read_file(path, OUTPUT)).decode(errors="replace").splitlines()
    except NotFound:
        kept = []
    kept = kept[:offset] + [""] * (offset - len(kept))
    text = "\n".join([*kept, *map(_console_text, lines)]) + "\n"
    backend.put_file(path, OUTPUT, [text.encode()])


def _console_text(line: str) -> str:
    prefix = CONSOLE_PREFIX.match(line)
    return line[prefix.end() :] if prefix else line


def output_line_count(backend: Backend, path: RunPath) -> int:
    """How many console lines the run's ``output.log`` holds: where a resumed run goes on."""
    try:
        return b"".join(backend.read_file(path, OUTPUT)).count(b"\n")
    except NotFound:
        return 0
