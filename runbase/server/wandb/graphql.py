"""``POST /graphql``: the W&B client's GraphQL, answered from the schema in ``schema/``.

The key is checked as for the native API; a wrong one answers 401 with a GraphQL error (the
client shows its message). Each operation runs in a worker thread, its resolvers calling the
request's backend. An operation that asks for a field runbase does not have fails validation,
and its error names the field as unsupported; a ``RunbaseError`` raised by a resolver becomes
a GraphQL error with the same message and code.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from ariadne import graphql_sync, load_schema_from_path, make_executable_schema
from graphql import GraphQLError, GraphQLSchema
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runbase.errors import InvalidInput, RunbaseError
from runbase.server.auth import authorize
from runbase.server.limits import read_body
from runbase.server.wandb import artifacts, files, history, resume, runs, scalars, viewer
from runbase.server.wandb.context import Context

SCHEMA_DIR = Path(__file__).with_name("schema")
logger = logging.getLogger("runbase.server")
# ariadne logs each error an answer carries; the ones worth a line (bugs) format_error logs
_QUIET = logging.getLogger("runbase.server.graphql_errors")
_QUIET.disabled = True


@cache
def schema() -> GraphQLSchema:
    """The executable schema: the SDL files with the resolvers of each module."""
    bindables = [
        *scalars.bindables,
        *viewer.bindables,
        *runs.bindables,
        *files.bindables,
        *resume.bindables,
        *history.bindables,
        *artifacts.bindables,
    ]
    return make_executable_schema(load_schema_from_path(str(SCHEMA_DIR)), *bindables)


async def graphql_endpoint(request: Request) -> Response:
    refused = await authorize(request)
    if refused is not None:
        return _errors(refused.status_code, _message(refused), dict(refused.headers))
    try:
        body = orjson.loads(await read_body(request, request.app.state.max_body_size))
        operation = _operation(body)
    except (orjson.JSONDecodeError, InvalidInput) as exc:
        message = exc.message if isinstance(exc, InvalidInput) else f"the body is not JSON: {exc}"
        return _errors(400, message)
    except RunbaseError as exc:
        return _errors(exc.status, exc.message)
    context = Context.of(request)
    _, answer = await run_in_threadpool(
        graphql_sync,
        schema(),
        operation,
        context_value=context,
        error_formatter=format_error,
        logger=_QUIET,
    )
    return Response(orjson.dumps(answer), media_type="application/json")


def _operation(body: Any) -> dict[str, Any]:
    """The request's ``query``, ``variables`` and ``operationName`` (an empty name, which the
    client sends at times, means the document's only operation)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise InvalidInput("the body must be an object with a GraphQL document in 'query'")
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidInput("'variables' must be an object")
    name = body.get("operationName") or None
    return {"query": body["query"], "variables": variables, "operationName": name}


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """A GraphQL error as the answer carries it: a ``RunbaseError`` with its code, a field
    the schema lacks as an unsupported feature, a bug as 'internal server error' (logged)."""
    formatted: dict[str, Any] = error.formatted  # type: ignore[assignment]
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, RunbaseError):
        if original.message not in error.message:  # a variable's error names the variable
            formatted["message"] = original.message
        formatted["extensions"] = {"code": original.code}
    elif original is not None and not isinstance(original, GraphQLError):
        logger.error("GraphQL resolver failed", exc_info=original)
        formatted["message"] = "internal server error"
    elif error.message.startswith("Cannot query field"):
        formatted["message"] = f"runbase does not support this: {error.message}"
        formatted["extensions"] = {"code": "unsupported"}
    return formatted


def _message(response: Response) -> str:
    try:
        return str(orjson.loads(bytes(response.body))["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "request refused"


def _errors(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    headers = {k: v for k, v in (headers or {}).items() if k.lower() not in _BODY_HEADERS}
    return JSONResponse({"errors": [{"message": message}]}, status_code=status, headers=headers)


_BODY_HEADERS = {"content-length", "content-type"}
