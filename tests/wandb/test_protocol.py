"""The traps of W&B's protocol, each sent as the client sends it (the documents are the
client's own), against a live server: upsertBucket's null semantics, file_stream's line
offsets, the summary line, the resume offsets, errors and unsupported operations."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import orjson
import pytest

from runbase.backend.base import RunPath
from runbase.errors import NotFound

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

UPSERT = """
mutation UpsertBucket ($id: String, $name: String, $project: String, $entity: String,
  $groupName: String, $description: String, $displayName: String, $notes: String,
  $commit: String, $config: JSONString, $host: String, $debug: Boolean, $program: String,
  $repo: String, $jobType: String, $state: String, $sweep: String, $tags: [String!],
  $summaryMetrics: JSONString) {
  upsertBucket(input: {id:$id,name:$name,groupName:$groupName,modelName:$project,
    entityName:$entity,description:$description,displayName:$displayName,notes:$notes,
    config:$config,commit:$commit,host:$host,debug:$debug,jobProgram:$program,jobRepo:$repo,
    jobType:$jobType,state:$state,sweep:$sweep,tags:$tags,summaryMetrics:$summaryMetrics}) {
    bucket { id name displayName description config sweepName
             project { id name entity { id name } } historyLineCount }
    inserted
  }
}
"""

RESUME_STATUS = """
query RunResumeStatus ($project: String, $entity: String, $name: String!) {
  model(name: $project, entityName: $entity) {
    id name entity { id name }
    bucket(name: $name, missingOk: true) {
      id name summaryMetrics displayName logLineCount historyLineCount eventsLineCount
      historyTail eventsTail config tags notes wandbConfig(keys: ["t"])
    }
  }
}
"""


def gql(server, query: str, status: int = 200, key: str | None = None, **variables: Any) -> Any:
    answer = httpx.post(
        server.url + "/graphql",
        json={"query": query, "variables": variables, "operationName": ""},
        auth=("api", key or server.key),
        timeout=30,
    )
    assert answer.status_code == status, answer.text
    return answer.json()


def stream(server, run: str, body: dict[str, Any], status: int = 200) -> None:
    answer = httpx.post(
        f"{server.url}/files/alice/traps/{run}/file_stream",
        content=orjson.dumps(body),
        auth=("api", server.key),
        timeout=30,
    )
    assert answer.status_code == status, answer.text


def history(offset: int, steps: range) -> dict[str, Any]:
    lines = [orjson.dumps({"_step": step, "x": step * 2}).decode() for step in steps]
    return {"files": {"wandb-history.jsonl": {"offset": offset, "content": lines}}}


def test_upsert_bucket_creates_then_leaves_null_fields_unchanged(wandb_server):
    config = orjson.dumps({"lr": {"value": 0.1, "desc": None}, "_wandb": {"value": {"t": 1}}})
    created = gql(wandb_server, UPSERT, name="u1", project="traps", entity=None,
                  config=config.decode(), tags=["a"], notes="n", displayName="first")  # fmt: skip
    bucket = created["data"]["upsertBucket"]["bucket"]
    assert created["data"]["upsertBucket"]["inserted"] is True
    assert bucket["project"]["entity"]["name"] == "alice"  # a null entity is the key owner's
    assert bucket["historyLineCount"] == 0
    assert orjson.loads(bucket["config"])["lr"] == {"value": 0.1, "desc": None}
    again = gql(wandb_server, UPSERT, name="u1", project="traps", entity="alice", notes="m")
    assert again["data"]["upsertBucket"]["inserted"] is False
    run = wandb_server.backend.get_run(RunPath("alice", "traps", "u1"))
    assert (run.notes, run.tags, run.display_name, run.config) == ("m", ("a",), "first",
                                                                     {"lr": 0.1})  # fmt: skip
    assert run.metadata["_wandb"] == {"t": 1}  # kept out of the user's config
    by_id = gql(wandb_server, UPSERT, id=bucket["id"], tags=["b", "c"])
    assert by_id["data"]["upsertBucket"]["bucket"]["name"] == "u1"
    run = wandb_server.backend.get_run(RunPath("alice", "traps", "u1"))
    assert (run.notes, run.tags) == ("m", ("b", "c"))


def test_file_stream_offsets_are_line_indexes_and_a_resent_batch_is_stored_once(wandb_server):
    gql(wandb_server, UPSERT, name="fs1", project="traps")
    stream(wandb_server, "fs1", history(0, range(5)))
    stream(wandb_server, "fs1", history(3, range(3, 8)))  # lines 3 and 4 again
    stream(wandb_server, "fs1", history(8, range(8, 10)))
    run = wandb_server.api().run("alice/traps/fs1")
    assert [row["_step"] for row in run.history(pandas=False)] == list(range(10))
    upserted = gql(wandb_server, UPSERT, name="fs1", project="traps")
    assert upserted["data"]["upsertBucket"]["bucket"]["historyLineCount"] == 10


def test_the_summary_line_replaces_the_summary(wandb_server):
    gql(wandb_server, UPSERT, name="sum1", project="traps")
    for summary in ({"a": 1, "b": 2}, {"b": 3}):
        line = orjson.dumps(summary).decode()
        body = {"files": {"wandb-summary.json": {"offset": 0, "content": [line]}}}
        stream(wandb_server, "sum1", body)
    assert wandb_server.api().run("alice/traps/sum1").summary._json_dict == {"b": 3}


def test_console_lines_are_rewritten_from_their_offset(wandb_server):
    gql(wandb_server, UPSERT, name="out1", project="traps")
    lines = ["2026-11-22T13:13:34.127205 one", "ERROR 2026-11-22T13:13:34.407577 two", "three"]
    stream(wandb_server, "out1", {"files": {"output.log": {"offset": 0, "content": lines}}})
    stream(wandb_server, "out1", {"files": {"output.log": {"offset": 1, "content": ["TWO"]}}})
    run = wandb_server.backend
    text = b"".join(run.read_file(RunPath("alice", "traps", "out1"), "output.log")).decode()
    assert text == "one\nTWO\n"


def test_resume_status_gives_the_offsets_and_the_last_rows(wandb_server):
    gql(wandb_server, UPSERT, name="res1", project="traps",
        config='{"lr": {"value": 0.5}}', summaryMetrics='{"_step": 6}')  # fmt: skip
    stream(wandb_server, "res1", history(0, range(7)))
    events = ['{"system.cpu": 1.0, "_wandb": true, "_runtime": 3.5}']
    output = ["2026-11-22T13:13:34.127205 hello"]
    body = {"files": {"wandb-events.jsonl": {"offset": 0, "content": events},
                      "output.log": {"offset": 0, "content": output}}}  # fmt: skip
    stream(wandb_server, "res1", body)
    found = gql(wandb_server, RESUME_STATUS, project="traps", entity=None, name="res1")
    bucket = found["data"]["model"]["bucket"]
    assert (bucket["historyLineCount"], bucket["eventsLineCount"], bucket["logLineCount"]) == (
        7,
        1,
        1,
    )
    [last] = orjson.loads(bucket["historyTail"])
    assert orjson.loads(last) == {"_step": 6, "x": 12}
    assert orjson.loads(orjson.loads(bucket["eventsTail"])[0])["_runtime"] == 3.5
    assert orjson.loads(bucket["config"]) == {"lr": {"value": 0.5, "desc": None}}
    assert "t" in orjson.loads(bucket["wandbConfig"])
    missing = gql(wandb_server, RESUME_STATUS, project="traps", entity=None, name="nope")
    assert missing["data"]["model"]["bucket"] is None


def test_complete_ends_the_run_finished_or_crashed(wandb_server):
    for name, code, state in (("end0", 0, "finished"), ("end1", 1, "crashed")):
        gql(wandb_server, UPSERT, name=name, project="traps")
        stream(wandb_server, name, {"complete": True, "exitcode": code})
        assert wandb_server.backend.get_run(RunPath("alice", "traps", name)).state == state
    stream(wandb_server, "end0", {})  # an empty post (the client sends one at times)


def test_a_malformed_file_stream_post_is_refused_and_writes_nothing(wandb_server):
    gql(wandb_server, UPSERT, name="bad1", project="traps")
    good = orjson.dumps({"_step": 0, "x": 1}).decode()
    body = {"files": {"wandb-history.jsonl": {"offset": 0, "content": [good, "{not json"]}}}
    stream(wandb_server, "bad1", body, status=400)
    stream(wandb_server, "bad1", {"files": {"wandb-history.jsonl": {"offset": -1}}}, status=400)
    stream(wandb_server, "bad1", {"files": []}, status=400)
    assert wandb_server.backend.get_run(RunPath("alice", "traps", "bad1")).history_line_count == 0
    stream(wandb_server, "nosuchrun", history(0, range(1)), status=404)


def test_a_wrong_key_is_a_401_with_a_graphql_error(wandb_server):
    answer = gql(wandb_server, "query Viewer { viewer { id entity } }", status=401, key="x" * 40)
    assert answer["errors"][0]["message"] == "invalid API key"
    viewer = gql(wandb_server, "query Viewer { viewer { id entity username teams { edges { node "
                               "{ name } } } } }")  # fmt: skip
    assert viewer["data"]["viewer"]["entity"] == "alice"


def test_an_unsupported_operation_is_a_graphql_error_that_names_it(wandb_server):
    answer = gql(wandb_server, "query Reports { project(name: \"p\") { allViews { edges { node "
                               "{ id } } } } }")  # fmt: skip
    [error] = answer["errors"]
    assert "runbase does not support" in error["message"] and "allViews" in error["message"]
    answer = gql(wandb_server, "mutation { createReport(input: {}) { id } }")
    assert "createReport" in answer["errors"][0]["message"]


def test_malformed_requests_are_400_with_a_message(wandb_server):
    url = wandb_server.url + "/graphql"
    auth = ("api", wandb_server.key)
    not_json = httpx.post(url, content=b"{", auth=auth)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["errors"][0]["message"]
    no_query = httpx.post(url, json={"variables": {}}, auth=auth)
    assert no_query.status_code == 400 and "query" in no_query.json()["errors"][0]["message"]
    bad_json_string = gql(wandb_server, UPSERT, name="j1", project="traps", config="{nope")
    assert "JSON" in bad_json_string["errors"][0]["message"]
    assert "data" not in bad_json_string or bad_json_string["data"] is None


def test_server_features_are_the_ones_runbase_has(wandb_server):
    found = gql(wandb_server, "query ServerFeaturesQuery { serverInfo { features { name "
                              "isEnabled } } }")  # fmt: skip
    names = {feature["name"] for feature in found["data"]["serverInfo"]["features"]}
    assert names == {"LARGE_FILENAMES", "TOTAL_COUNT_IN_FILE_CONNECTION", "FILESTREAM_GZIP",
                     "UPDATE_RUN_STATE"}  # fmt: skip


def test_a_gzip_file_stream_post_is_read(wandb_server):
    gql(wandb_server, UPSERT, name="gz1", project="traps")
    answer = httpx.post(
        f"{wandb_server.url}/files/alice/traps/gz1/file_stream",
        content=gzip.compress(orjson.dumps(history(0, range(3)))),
        headers={"Content-Encoding": "gzip"},
        auth=("api", wandb_server.key),
    )
    assert answer.status_code == 200
    run = wandb_server.backend.get_run(RunPath("alice", "traps", "gz1"))
    assert run.history_line_count == 3


UPDATE_STATE = """
mutation UpdateRunState($input: UpdateRunStateInput!) { updateRunState(input: $input) { success } }
"""


def test_update_run_state_marks_a_running_run_failed_once(wandb_server):
    made = gql(wandb_server, UPSERT, name="st1", project="traps")
    run_id = made["data"]["upsertBucket"]["bucket"]["id"]
    done = gql(wandb_server, UPDATE_STATE, input={"id": run_id, "state": "failed"})
    assert done["data"]["updateRunState"]["success"] is True
    assert wandb_server.backend.get_run(RunPath("alice", "traps", "st1")).state == "failed"
    again = gql(wandb_server, UPDATE_STATE, input={"id": run_id, "state": "failed"})
    assert "invalid state transition from failed to failed" in again["errors"][0]["message"]
    stop = gql(wandb_server, "mutation StopRun($id: ID!) { stopRun(input: {id: $id}) { success } }",
               id=run_id)  # fmt: skip
    assert "cannot stop a run" in stop["errors"][0]["message"]


def test_delete_run_deletes_once_and_then_is_a_no_op(wandb_server):
    made = gql(wandb_server, UPSERT, name="del1", project="traps")
    stream(wandb_server, "del1", history(0, range(3)))
    delete = """mutation DeleteRun($id: ID!, $deleteArtifacts: Boolean) {
      deleteRun(input: {id: $id, deleteArtifacts: $deleteArtifacts}) { clientMutationId } }"""
    run_id = made["data"]["upsertBucket"]["bucket"]["id"]
    assert "errors" not in gql(wandb_server, delete, id=run_id)
    with pytest.raises(NotFound):
        wandb_server.backend.get_run(RunPath("alice", "traps", "del1"))
    assert "errors" not in gql(wandb_server, delete, id=run_id, deleteArtifacts=True)


HISTORY_PAGE = """
query HistoryPage ($entity: String!, $project: String!, $run: String!, $minStep: Int64!,
  $maxStep: Int64!, $pageSize: Int!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize) } } }
"""
SAMPLED_PAGE = """
query SampledHistoryPage ($entity: String!, $project: String!, $run: String!,
  $spec: JSONString!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { sampledHistory(specs: [$spec]) } } }
"""


def test_history_pages_end_exclusive_and_sampled_pages_inclusive(wandb_server):
    gql(wandb_server, UPSERT, name="pages1", project="traps")
    stream(wandb_server, "pages1", history(0, range(10)))
    where: dict[str, Any] = {"entity": "alice", "project": "traps", "run": "pages1"}
    page = gql(wandb_server, HISTORY_PAGE, minStep=2, maxStep=5, pageSize=3, **where)
    texts = page["data"]["project"]["run"]["history"]
    assert [orjson.loads(text)["_step"] for text in texts] == [2, 3, 4]  # rows as JSON strings
    spec = orjson.dumps({"keys": ["_step", "x", "_step"], "minStep": 2, "maxStep": 5,
                         "samples": 4}).decode()  # fmt: skip
    sampled = gql(wandb_server, SAMPLED_PAGE, spec=spec, **where)
    [rows] = sampled["data"]["project"]["run"]["sampledHistory"]
    assert rows == [{"_step": step, "x": step * 2} for step in range(2, 6)]  # rows as objects
