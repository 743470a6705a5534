"""Artifacts with the real wandb client: logged (a directory, single files, the same content
again, new versions with aliases), used and downloaded by another run in a home of its own
(no cached files), fetched with ``wandb.Api().artifact``; tables, images and code logged in
a run; another entity's and a read-only key refused; what runbase lacks answered with an
error that names it, never a null payload nor a 500."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from runbase.backend import open_accounts
from runbase.backend.artifacts import NewArtifact
from runbase.backend.base import NewRun, RunPath
from runbase.server.wandb import ids
from runbase.server.wandb.artifact_files import V1_PATH
from runbase.server.wandb.artifact_nodes import artifact_id
from runbase.settings import Settings
from runbase.store import artifact_files

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MARK = "@@json "


def client(
    wandb_server: Any, body: str, home: str | None = None, file: str | None = None
) -> dict[str, Any]:
    """``body`` (which fills ``out``) run by a client process, in a home of its own when
    ``home`` is given, as a script ``file`` in the home when one is named; what it put in
    ``out``."""
    script = "import json, os, wandb\nout = {}\n" + textwrap.dedent(body)
    script += f"\nprint({MARK!r} + json.dumps(out))\n"
    where = wandb_server.home
    kwargs: dict[str, Any] = {}
    if home is not None:
        where = wandb_server.home.parent / home
        where.mkdir(exist_ok=True)
        kwargs["cwd"] = where
        kwargs["env"] = wandb_server.env(
            HOME=str(where),
            WANDB_CONFIG_DIR=str(where / ".config" / "wandb"),
            WANDB_CACHE_DIR=str(where / ".cache" / "wandb"),
            WANDB_DATA_DIR=str(where / ".local" / "wandb"),
        )
    if file is None:
        done = wandb_server.python(script, **kwargs)
    else:
        (where / file).write_text(script)
        done = wandb_server.run(sys.executable, file, **kwargs)
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARK))
    found: dict[str, Any] = json.loads(line[len(MARK) :])
    return found


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


LOG = """
os.makedirs("data/sub", exist_ok=True)
open("data/a.txt", "w").write("first a")
open("data/sub/b.bin", "wb").write(bytes(range(256)) * 50)
open("weights.pt", "wb").write(b"w" * 5000)
run = wandb.init(project="arts", id="logger")
v0 = wandb.Artifact("ds", type="dataset", description="first", metadata={"rows": 2})
v0.add_dir("data")
run.log_artifact(v0).wait()
again = wandb.Artifact("ds", type="dataset")
again.add_dir("data")
run.log_artifact(again, aliases=["again"]).wait()
os.makedirs("v0", exist_ok=True)
os.rename("data/a.txt", "v0/a.txt")
open("data/a.txt", "w").write("second a")
v1 = wandb.Artifact("ds", type="dataset")
v1.add_dir("data")
run.log_artifact(v1, aliases=["best"]).wait()
model = run.log_artifact("weights.pt", name="model", type="model")
model.wait()
run.finish()
for name, art in [("v0", v0), ("again", again), ("v1", v1), ("model", model)]:
    out[name] = [art.version, sorted(art.aliases), art.id]
"""

USE = """
run = wandb.init(project="arts", id="user")
v0 = run.use_artifact("ds:v0")
out["dl0"] = v0.download(root="dl0")
best = run.use_artifact("alice/arts/ds:best", type="dataset")
out["dl1"] = best.download(root="dl1")
model = run.use_artifact("model:latest")
out["dl2"] = model.download(root="dl2")
run.finish()
api = wandb.Api(timeout=60)
latest = api.artifact("alice/arts/ds:latest")
by_version = api.artifact("alice/arts/ds:v0", type="dataset")
out["dl3"] = by_version.download(root="dl3")
out["latest"] = [latest.version, sorted(latest.aliases), latest.size, latest.file_count,
                 latest.description, latest.metadata, latest.type]
out["v0"] = [by_version.version, sorted(by_version.aliases), by_version.description,
             by_version.metadata]
out["files"] = sorted([f.name, f.size] for f in latest.files())
out["used"] = sorted(a.name for a in api.run("alice/arts/user").used_artifacts())
out["logged"] = sorted(a.name for a in api.run("alice/arts/logger").logged_artifacts())
out["used_by"] = [r.id for r in latest.used_by()]
out["logged_by"] = latest.logged_by().id
out["versions"] = [a.name for a in api.artifacts("dataset", "alice/arts/ds")]
by_version.aliases.append("gold")
by_version.description = "the first"
by_version.save()
gold = api.artifact("alice/arts/ds:gold")
out["gold"] = [gold.version, gold.description]
"""


def test_artifacts_are_versioned_used_and_downloaded(wandb_server):
    logged = client(wandb_server, LOG)
    assert logged["v0"][:2] == ["v0", ["latest"]]
    assert logged["again"] == ["v0", ["again", "latest"], logged["v0"][2]]  # no new version
    assert logged["v1"][:2] == ["v1", ["best", "latest"]]
    assert logged["model"][:2] == ["v0", ["latest"]]

    used = client(wandb_server, USE, home="user-home")
    home, user_home = wandb_server.home, wandb_server.home.parent / "user-home"
    first = {"a.txt": b"first a", "sub/b.bin": (home / "data/sub/b.bin").read_bytes()}
    second = {**first, "a.txt": b"second a"}
    assert tree(user_home / used["dl0"]) == first == tree(user_home / used["dl3"])
    assert tree(user_home / used["dl1"]) == second == tree(home / "data")
    assert tree(user_home / used["dl2"]) == {"weights.pt": b"w" * 5000}
    assert used["latest"] == ["v1", ["best", "latest"], 8 + 12800, 2, None, {}, "dataset"]
    assert used["v0"] == ["v0", ["again"], "first", {"rows": 2}]
    assert used["files"] == [["a.txt", 8], ["sub/b.bin", 12800]]
    assert used["used"] == ["ds:v0", "ds:v1", "model:v0"]
    assert used["logged"] == ["ds:v0", "ds:v1", "model:v0"]
    assert (used["used_by"], used["logged_by"]) == (["user"], "logger")
    assert used["versions"] == ["ds:v1", "ds:v0"]
    assert used["gold"] == ["v0", "the first"]

    # b.bin is in both versions, its bytes once: a.txt twice, b.bin, weights.pt
    backend = wandb_server.backend
    with backend.store.read() as conn:
        entity = artifact_files.entity_pk(conn, "alice")
        assert artifact_files.count_blobs(conn, entity) == 4
    stored = backend.artifacts().find("alice", "arts", "ds", "best")
    assert (stored.version, stored.run_id, stored.aliases) == ("v1", "logger", ("best", "latest"))


TABLE_IMAGE_CODE = """
import numpy as np
run = wandb.init(project="media", id="tab1", save_code=True)
table = wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])
image = wandb.Image(np.full((8, 8, 3), 200, dtype=np.uint8), caption="grey")
run.log({"tbl": table, "img": image, "loss": 0.5})
code = run.log_code(".", include_fn=lambda path: path.endswith("train.py"))
run.finish()
api = wandb.Api(timeout=60)
out["code"] = [code.name, code.type]
out["table"] = api.artifact("alice/media/run-tab1-tbl:latest").get("tbl").data
source = api.artifact(f"alice/media/{code.name.split(':')[0]}:latest")
out["source"] = open(os.path.join(source.download(root="src"), "train.py")).read()
"""


@SQLITE
def test_tables_images_and_code_of_a_run(wandb_server):
    found = client(wandb_server, TABLE_IMAGE_CODE, file="train.py")
    script = (wandb_server.home / "train.py").read_text()
    assert found["table"] == [[1, "x"], [2, "y"]]
    assert found["code"][1] == "code" and found["source"] == script

    path = RunPath("alice", "media", "tab1")
    run = wandb_server.api().run(str(path))
    row = run.history(pandas=False)[0]
    assert row["tbl"]["_type"] == "table-file"
    assert row["tbl"]["artifact_path"].startswith("wandb-client-artifact://")
    assert row["img"]["_type"] == "image-file" and row["img"]["caption"] == "grey"
    names = {file.name for file in run.files()}
    assert {row["tbl"]["path"], row["img"]["path"], "code/train.py"} <= names
    image = b"".join(wandb_server.backend.read_file(path, row["img"]["path"]))
    assert hashlib.sha256(image).hexdigest() == row["img"]["sha256"]
    saved = b"".join(wandb_server.backend.read_file(path, "code/train.py"))
    assert saved.decode() == script
    logged = wandb_server.backend.artifacts().of_run(path, False, 10, None).items
    assert sorted((a.name, a.type) for a in logged) == sorted(
        [("run-tab1-tbl", "run_table"), (found["code"][0].split(":")[0], "code")]
    )


OFFLINE = """
run = wandb.init(project="offline", id="off1", mode="offline")
open("x.txt", "w").write("offline bytes")
art = wandb.Artifact("offart", type="dataset")
art.add_file("x.txt")
run.log_artifact(art)
run.finish()
out["dir"] = run.dir
"""


@SQLITE
def test_an_offline_run_syncs_its_artifacts(wandb_server):
    run_dir = Path(client(wandb_server, OFFLINE)["dir"]).parent
    wandb_server.run("wandb", "sync", str(run_dir))
    stored = wandb_server.backend.artifacts().find("alice", "offline", "offart", "latest")
    assert (stored.version, stored.run_id, stored.file_count) == ("v0", "off1", 1)
    files = wandb_server.backend.artifacts().files(stored.id, [], 10, None).items
    read = wandb_server.backend.artifacts().read_blob("alice", files[0].md5)
    assert (files[0].name, b"".join(read)) == ("x.txt", b"offline bytes")


REFUSED = """
def attempt(call):
    try:
        call()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)
    return "allowed"

bob = wandb.Api(api_key=os.environ["BOB_KEY"], timeout=30)
out["bob_reads"] = attempt(lambda: bob.artifact("alice/p/ds:latest"))
reader = wandb.Api(api_key=os.environ["READER_KEY"], timeout=30)
art = reader.artifact("alice/p/ds:latest")
out["reader_reads"] = [art.version, sorted(art.aliases)]
art.aliases.append("mine")
out["reader_writes"] = attempt(art.save)
"""


@SQLITE
def test_another_entity_and_a_read_only_key_are_refused(wandb_server):
    accounts = open_accounts(Settings.load())
    accounts.create_user("bob")
    bob_key = accounts.create_key("bob")[0]
    reader_key = accounts.create_key("alice", read_only=True)[0]
    pk = committed(wandb_server.backend)
    env = {"BOB_KEY": bob_key, "READER_KEY": reader_key}
    script = "import os\nos.environ.update(" + repr(env) + ")\n" + REFUSED
    found = client(wandb_server, script)
    assert "not found" in found["bob_reads"]
    assert found["reader_reads"] == ["v0", ["latest"]]
    assert "read-only" in found["reader_writes"]

    # and straight at the GraphQL endpoint
    alices_id = artifact_id(wandb_server.backend.artifacts().get(pk))
    assert gql(wandb_server, bob_key, ARTIFACT, {"id": alices_id}) == {"artifact": None}
    for key, code in ((bob_key, "not_found"), (reader_key, "forbidden")):
        answer = post(wandb_server, key, COMMIT, {"id": alices_id})
        assert answer.status_code == 200
        assert answer.json()["errors"][0]["extensions"]["code"] == code
    create = post(wandb_server, reader_key, CREATE, {"input": create_input()})
    assert create.json()["errors"][0]["extensions"]["code"] == "forbidden"
    url = wandb_server.url + V1_PATH.format(entity="alice", md5=hashlib.md5(BYTES).hexdigest())
    assert httpx.get(url, auth=("api", bob_key)).status_code == 404
    assert httpx.get(url, auth=("api", reader_key)).content == BYTES


BYTES = b"bytes of alice"
ARTIFACT = "query A($id: ID!) { artifact(id: $id) { id versionIndex } }"
COMMIT = "mutation C($id: ID!) { commitArtifact(input: {artifactID: $id}) { artifact { id } } }"
CREATE = """mutation CreateArtifact($input: CreateArtifactInput!) {
  createArtifact(input: $input) { artifact { id state } } }"""


def committed(backend) -> int:
    """A committed version ``alice/p/ds:v0`` with one file; its id."""
    backend.create_run(RunPath("alice", "p", "r"), NewRun())
    arts = backend.artifacts()
    found = arts.create(NewArtifact("alice", "p", "ds", "dataset", "d", run_id="r"))
    arts.put_blob("alice", hashlib.md5(BYTES).hexdigest(), [BYTES])
    digest = base64.b64encode(hashlib.md5(BYTES).digest()).decode()
    entry = {"digest": digest, "size": len(BYTES)}
    arts.put_manifest(found.id, [json.dumps({"version": 1, "contents": {"a.txt": entry}}).encode()])
    return arts.commit(found.id).id


def create_input(**extra: Any) -> dict[str, Any]:
    return {"entityName": "alice", "projectName": "p", "artifactTypeName": "dataset",
            "artifactCollectionName": "ds", "runName": "r", "digest": "new",
            "digestAlgorithm": "MANIFEST_MD5", **extra}  # fmt: skip


def post(server: Any, key: str, query: str, variables: dict[str, Any]) -> httpx.Response:
    body = {"query": query, "variables": variables}
    return httpx.post(server.url + "/graphql", json=body, auth=("api", key), timeout=30)


def gql(server: Any, key: str, query: str, variables: dict[str, Any]) -> Any:
    answer = post(server, key, query, variables)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    return answer.json()["data"]


UNSUPPORTED = {
    "LinkArtifact": (
        """mutation L($id: ID) { linkArtifact(input: {artifactID: $id,
           artifactPortfolioName: "reg", entityName: "alice", projectName: "p"}) {
           versionIndex } }""",
        "registries",
    ),
    "DeleteArtifact": (
        "mutation D($id: ID!) { deleteArtifact(input: {artifactID: $id}) { artifact { id } } }",
        "deleting",
    ),
    "TTL": (
        """mutation U($id: ID!) { updateArtifact(input: {artifactID: $id,
           ttlDurationSeconds: 3600}) { artifact { id } } }""",
        "TTL",
    ),
    "Multipart": (
        """mutation M($id: ID!) { completeMultipartUploadArtifact(input: {
           completeMultipartAction: Complete, completedParts: [], artifactID: $id,
           storagePath: "x", uploadID: "y"}) { digest } }""",
        "multipart",
    ),
    "Incremental": (
        """mutation I($id: ID!) { createArtifactManifest(input: {artifactID: $id,
           name: "m", digest: "", entityName: "alice", projectName: "p", runName: "r",
           type: INCREMENTAL}) { artifactManifest { id } } }""",
        "incremental",
    ),
}


@SQLITE
def test_what_runbase_lacks_and_bad_input_are_clear_errors(wandb_server):
    key = wandb_server.key
    pk = committed(wandb_server.backend)
    alices_id = artifact_id(wandb_server.backend.artifacts().get(pk))
    for name, (query, words) in UNSUPPORTED.items():
        error = post(wandb_server, key, query, {"id": alices_id}).json()["errors"][0]
        assert error["extensions"]["code"] == "unsupported", name
        assert words in error["message"], (name, error)
    for extra, words in (({"tags": [{"tagName": "t"}]}, "tags"),
                         ({"ttlDurationSeconds": 60}, "TTL")):  # fmt: skip
        error = post(wandb_server, key, CREATE, {"input": create_input(**extra)}).json()
        assert words in error["errors"][0]["message"] and error["data"]["createArtifact"] is None

    bad_inputs: list[tuple[str, dict[str, Any]]] = [
        (ARTIFACT, {"id": "not-an-id"}),
        (ARTIFACT, {"id": "UnVuOnYxOlsiYSJd"}),  # a Run id
        (COMMIT, {"id": ids.global_id("Artifact", "999")}),
        (CREATE, {"input": create_input(artifactCollectionName="bad name/")}),
        (CREATE, {"input": create_input(runName="nope")}),
        (CREATE, {"input": create_input(artifactTypeName="model")}),  # ds is a dataset
        (FILES, {"id": alices_id, "md5": "not base64"}),
        (FILES, {"id": alices_id, "md5": "YWJj"}),  # base64, but not of 16 bytes
    ]
    for query, variables in bad_inputs:
        answer = post(wandb_server, key, query, variables)
        assert answer.status_code == 200, answer.text
        error = answer.json()["errors"][0]
        assert error["message"] != "internal server error", error
        assert error["extensions"]["code"] in ("invalid_input", "not_found"), error

    pending = gql(wandb_server, key, CREATE, {"input": create_input(digest="other")})
    new_id = pending["createArtifact"]["artifact"]["id"]
    data = b"uploaded bytes"
    md5 = hashlib.md5(data)
    asked = {"id": new_id, "md5": base64.b64encode(md5.digest()).decode()}
    urls = gql(wandb_server, key, FILES, asked)
    url = urls["createArtifactFiles"]["files"]["edges"][0]["node"]["uploadUrl"]
    assert httpx.put(url, content=b"other bytes").status_code == 400  # not the md5 asked for
    assert httpx.put(url + "x", content=data).status_code == 401
    run_file_route = url.replace("/wandb/artifacts/upload/", "/wandb/upload/")
    assert httpx.put(run_file_route, content=data).status_code == 400
    assert httpx.put(url, content=data).status_code == 200
    again = gql(wandb_server, key, FILES, asked)
    assert again["createArtifactFiles"]["files"]["edges"][0]["node"]["uploadUrl"] is None
    refused = post(wandb_server, key, COMMIT, {"id": new_id}).json()["errors"][0]
    assert "no manifest" in refused["message"]
    core = gql(
        wandb_server,
        key,
        BY_ENTRIES,
        {
            "id": alices_id,
            "entries": [
                {"name": "a.txt", "digest": base64.b64encode(hashlib.md5(BYTES).digest()).decode()}
            ],
        },
    )
    file_url = core["artifact"]["filesByManifestEntries"]["edges"][0]["node"]["directUrl"]
    assert httpx.get(file_url).content == BYTES
    part = httpx.get(file_url, headers={"Range": "bytes=6-9"})
    assert (part.status_code, part.content) == (206, BYTES[6:10])
    assert part.headers["content-range"] == f"bytes 6-9/{len(BYTES)}"
    assert httpx.get(file_url, headers={"Range": "bytes=99-"}).status_code == 416
    manifest = gql(wandb_server, key, MANIFEST, {"id": alices_id})["artifact"]["currentManifest"]
    assert httpx.get(manifest["file"]["directUrl"]).json()["version"] == 1
    v2 = f"/artifactsV2/default/alice/p/ds/x/{md5.hexdigest()}/f.txt"  # V2_PATH
    assert httpx.get(wandb_server.url + v2, auth=("api", key)).content == data
    assert httpx.get(wandb_server.url + v2).status_code == 401


BY_ENTRIES = """query E($id: ID!, $entries: [ArtifactManifestEntryInput!]) {
  artifact(id: $id) { filesByManifestEntries(storageLayout: "V2", manifestVersion: "1",
  entries: $entries) { edges { node { name directUrl } } } } }"""
MANIFEST = "query M($id: ID!) { artifact(id: $id) { currentManifest { file { directUrl } } } }"
FILES = """mutation F($id: ID!, $md5: String!) { createArtifactFiles(input: {artifactFiles: [
  {artifactID: $id, name: "f.txt", md5: $md5}], storageLayout: V2}) {
  files { edges { node { uploadUrl } } } } }"""
