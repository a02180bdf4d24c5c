"""OpenMetadata's own client (openmetadata-ingestion 2.0.7.0, classic and SDK, unmodified) over
real HTTP against gunicorn, with authentication off and on. The client cannot be installed
beside the gateway's test dependencies, so it runs from its own environment
(GATEWAY_TEST_OM_PYTHON, built by .ci/om_client_env.sh); tests/om_client_driver.py holds the
calls and their asserts."""
import os
import subprocess
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from tests.conftest import serve
from tests.test_tenants_http import gateway as cli

pytestmark = pytest.mark.server
DRIVER = Path(__file__).with_name("om_client_driver.py")
DEFAULT_ENV = Path(__file__).parent.parent / ".ci" / ".om-client" / "bin" / "python"


@pytest.fixture(scope="module")
def om_python():
    """The client's Python: GATEWAY_TEST_OM_PYTHON, else .ci/.om-client (built on first use,
    a few minutes, from the package registry)."""
    path = os.environ.get("GATEWAY_TEST_OM_PYTHON") or str(DEFAULT_ENV)
    if not Path(path).exists() and path == str(DEFAULT_ENV):
        script = DEFAULT_ENV.parent.parent.parent / "om_client_env.sh"
        subprocess.run(["bash", str(script), str(DEFAULT_ENV.parent.parent)],
                       capture_output=True, timeout=1200)
    if not Path(path).exists():
        reason = (f"OpenMetadata's client could not be built ({path}): run "
                  "`bash .ci/om_client_env.sh .ci/.om-client`")
        if os.environ.get("GATEWAY_TEST_REQUIRE_OM"):
            pytest.fail(f"{reason}, and GATEWAY_TEST_REQUIRE_OM is set")
        pytest.skip(reason)
    return path


def drive(python, host_port, token, scenario):
    """Run one scenario of the driver; its asserts decide, its output explains."""
    result = subprocess.run([python, str(DRIVER), host_port, token, scenario],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    server = serve(tmp_path_factory, "om-open")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory):
    server = serve(tmp_path_factory, "om-secure", env={"GATEWAY_AUTH": "required"})
    cli(server, "principal", "create", "om-bot")
    token = cli(server, "principal", "token", "om-bot")
    cli(server, "principal", "grant", "om-bot", "default", "writer")
    yield server, token
    server.stop()


def test_classic_client_lifecycle_without_authentication(om_python, open_server):
    assert "lifecycle ok" in drive(om_python, f"{open_server.url}/api", "any", "lifecycle")


def test_classic_client_lifecycle_with_a_gateway_token(om_python, secure_server):
    server, token = secure_server
    assert "lifecycle ok" in drive(om_python, f"{server.url}/api", token, "lifecycle")


def test_sdk_with_and_without_authentication(om_python, open_server, secure_server):
    assert "sdk ok" in drive(om_python, f"{open_server.url}/api", "any", "sdk")
    server, token = secure_server
    assert "sdk ok" in drive(om_python, f"{server.url}/api", token, "sdk")


def test_a_wrong_token_is_refused(om_python, secure_server):
    server, _ = secure_server
    assert "refused" in drive(om_python, f"{server.url}/api", "not-a-token", "refused")


def test_another_workspace_through_host_port(om_python, open_server):
    requests.post(f"{open_server.url}/api/3.0/mlflow/workspaces", json={"name": "om-team"},
                  timeout=30).raise_for_status()
    root = f"{open_server.url}/workspaces/om-team/api"
    assert "sdk ok" in drive(om_python, root, "any", "sdk")


def test_the_mlflow_client_sees_the_same_models(om_python, open_server):
    drive(om_python, f"{open_server.url}/api", "any", "handoff")
    mlflow = MlflowClient(tracking_uri=open_server.url, registry_uri=open_server.url)
    assert mlflow.get_registered_model("shared").description == "from OM"
    version = mlflow.create_model_version("shared", "s3://bucket/shared/1")
    assert version.version == "1"
    mlflow.create_registered_model("from-mlflow", description="registered by MLflow")
    assert "sees mlflow ok" in drive(om_python, f"{open_server.url}/api", "any", "sees_mlflow")
