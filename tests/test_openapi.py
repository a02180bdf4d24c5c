"""/openapi.json documents every face; schemathesis fuzzes them all against a real gunicorn."""
import subprocess
import sys

import pytest
import requests

from tests.conftest import serve


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    server = serve(tmp_path_factory, "fuzz", workers=3, env={"GATEWAY_ACCESS_LOG": "false"})
    requests.post(f"{server.url}/api/2.0/mlflow/registered-models/create", json={"name": "m"})
    yield server
    server.stop()


def test_document_covers_every_face(fuzz_server):
    paths = requests.get(f"{fuzz_server.url}/openapi.json").json()["paths"]
    oci = "/20260430/aiDataPlatforms/{platform_id}"
    assert "/api/2.0/mlflow/model-versions/create" in paths
    assert f"{oci}/workspaces/{{workspace_key}}/mlops/api/2.0/mlflow/model-versions/create" in paths
    assert "post" in paths[f"{oci}/mlops/api/2.0/mlflow/registered-models/delete"]
    assert "/apis/models/v2/workspaces/{workspace}/models/{name}/adapters" in paths
    assert set(paths["/apis/models/v2/workspaces/{workspace}/adapters/{name}"]) == {
        "get", "patch", "delete"}
    assert set(paths["/apis/entities/v2/workspaces/{name}/members/{principal}"]) == {
        "put", "delete"}
    assert "201" in paths["/apis/entities/v2/workspaces"]["post"]["responses"]
    assert set(paths["/api/v1/mlmodels/{id}"]) == {"get", "patch", "delete"}
    assert "put" in paths["/api/v1/services/mlmodelServices/bulk"]


@pytest.mark.server
def test_schemathesis_finds_no_500_and_no_answer_off_the_document(fuzz_server):
    # Every check but "schema-valid request accepted": the document cannot express every
    # domain rule (a model must exist, names must not look like paths), so some valid-looking
    # requests are rightly refused with a 4xx.
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{fuzz_server.url}/openapi.json",
         "--max-examples", "20", "--seed", "1", "--mode", "all", "--no-shrink",
         "--exclude-checks", "positive_data_acceptance", "--request-timeout", "10",
         # Hypothesis's "generation too slow" is about this machine's load, not the server: it
         # failed one run of this seed on a busy machine and passed the rerun.
         "--suppress-health-check", "too_slow"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-8000:]
    assert " passed" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1]
