"""The ASGI application: the native API over one backend, and one error format.

Every error answers ``{"code", "message"}`` with the error's status: a ``RunbaseError`` as it
is, a request that fails validation as ``invalid_input`` (400) naming the field at fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from runbase.backend.accounts import Accounts
from runbase.backend.base import Backend
from runbase.backend.sessions import Sessions
from runbase.errors import InvalidInput, NotFound, RunbaseError
from runbase.server.access import AccessLog
from runbase.server.auth import FailureLimiter
from runbase.server.limits import MAX_BODY_SIZE
from runbase.server.routes import router
from runbase.server.wandb import add_wandb_routes
from runbase.server.web import add_web_routes
from runbase.settings import Settings


def create_app(
    backend: Backend,
    accounts: Accounts | None = None,
    *,
    max_file_size: int = Settings.max_file_size,
    max_body_size: int = MAX_BODY_SIZE,
) -> FastAPI:
    """The server's application over ``backend`` (which it does not close).

    With ``accounts`` each request of the API authenticates with an API key and works on
    what its user may see (or the dashboard's session cookie); without, every request acts as
    the backend's own user. The dashboard's pages are served at ``/``. Uploads
    past ``max_file_size`` bytes and JSON bodies past ``max_body_size`` answer 413. Each
    request is logged on ``runbase.access``."""
    app = FastAPI(title="runbase", summary="The native JSON API of a runbase server.")
    app.state.backend = backend
    app.state.accounts = accounts
    app.state.max_file_size = max_file_size
    app.state.max_body_size = max_body_size
    app.add_middleware(AccessLog)
    app.state.failures = FailureLimiter()
    app.state.sessions = None if accounts is None else Sessions(accounts)
    app.include_router(router)
    app.add_api_route("/healthz", healthz, methods=["GET"])
    add_wandb_routes(app)
    add_web_routes(app)  # last: a page never shadows an API route
    app.add_exception_handler(RunbaseError, _runbase_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
    app.openapi = _openapi_without_422(app)  # type: ignore[method-assign]
    return app


def _openapi_without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's OpenAPI document without FastAPI's 422 answers: a request that fails
    validation answers 400 here, as every route documents."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for operations in document["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
        return app.openapi_schema or {}

    return openapi


def app_from_environment() -> FastAPI:
    """The application a worker of ``runbase server --workers N`` serves: over the store the
    ``RUNBASE_*`` settings of its environment name, with API keys, access log on stderr."""
    from runbase.backend import open_accounts, open_backend
    from runbase.server.access import log_to_stderr

    log_to_stderr()
    settings = Settings.load().with_(base_url=None)
    backend, accounts = open_backend(settings), open_accounts(settings)
    return create_app(backend, accounts, max_file_size=settings.max_file_size)


def healthz() -> dict[str, bool]:
    return {"ok": True}


def error_response(status: int, code: str, message: str) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _runbase_error(request: Request, exc: RunbaseError) -> Response:
    return error_response(exc.status, exc.code, exc.message)


def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return error_response(InvalidInput.status, InvalidInput.code, f"{where}: {first['msg']}")


def _unexpected_error(request: Request, exc: Exception) -> Response:
    # a bug, not bad input: the details go to the server's log (uvicorn logs it), not the caller
    return error_response(RunbaseError.status, RunbaseError.code, "internal server error")


def _http_error(request: Request, exc: HTTPException) -> Response:
    code = NotFound.code if exc.status_code == NotFound.status else InvalidInput.code
    return error_response(exc.status_code, code, str(exc.detail))
