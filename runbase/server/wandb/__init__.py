"""The W&B adapter: what the released ``wandb`` client needs of a server, over the same
backend as the native API. GraphQL at ``/graphql``, the run's ``file_stream``, and the signed
URLs that files are uploaded to and downloaded from."""

from __future__ import annotations

from fastapi import FastAPI

from runbase.server.wandb import artifact_files, file_stream, files, graphql, history


def add_wandb_routes(app: FastAPI) -> None:
    """Serve the W&B client's endpoints on ``app`` (they are not part of the OpenAPI
    document: their shapes are W&B's)."""
    app.add_route("/graphql", graphql.graphql_endpoint, methods=["POST"], include_in_schema=False)
    app.add_route(file_stream.PATH, file_stream.file_stream, methods=["POST"],
                  include_in_schema=False)  # fmt: skip
    app.add_route(files.UPLOAD_PATH, files.upload, methods=["PUT"], include_in_schema=False)
    app.add_route(files.DOWNLOAD_PATH, files.download, methods=["GET"], include_in_schema=False)
    for path, route, method in artifact_files.ROUTES:
        app.add_route(path, route, methods=[method], include_in_schema=False)
    app.add_route(history.PARQUET_PATH, history.parquet_file, methods=["GET"],
                  include_in_schema=False)  # fmt: skip
