"""OpenMetadata's own client (openmetadata-ingestion 2.0.7.0, classic and SDK, unmodified) over
real HTTP against gunicorn, with authentication off and on. The client cannot be installed
beside the gateway's test dependencies, so it runs from its own environment
(GATEWAY_TEST_OM_PYTHON, built by .ci/om_client_env.sh); tests/om_client_driver.py holds the
calls and their asserts."""
import os
import subprocess
import uuid
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


def drive(python, host_port, token, scenario, prefix=""):
    """Run one scenario of the driver; its asserts decide, its output explains."""
    result = subprocess.run([python, str(DRIVER), host_port, token, scenario, prefix],
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
    bot = f"om-bot-{uuid.uuid4().hex[:8]}"  # a database shared by server tests may know om-bot
    cli(server, "principal", "create", bot)
    token = cli(server, "principal", "token", bot)
    yield server, token
    server.stop()


def fresh_workspace(server, token, unique):
    """A new workspace (made through NeMo's API by the token's principal, who becomes its
    admin): its hostPort, so tests sharing a database never see each other's entities."""
    headers = {"Authorization": f"Bearer {token}"} if token != "any" else {}
    requests.post(f"{server.url}/apis/entities/v2/workspaces", json={"name": unique},
                  headers=headers, timeout=30).raise_for_status()
    return f"{server.url}/workspaces/{unique}/api"


def test_classic_client_lifecycle_without_authentication(om_python, open_server, unique):
    root = fresh_workspace(open_server, "any", unique)
    assert "lifecycle ok" in drive(om_python, root, "any", "lifecycle")


def test_classic_client_lifecycle_with_a_gateway_token(om_python, secure_server, unique):
    server, token = secure_server
    root = fresh_workspace(server, token, unique)
    assert "lifecycle ok" in drive(om_python, root, token, "lifecycle")


def test_sdk_with_and_without_authentication(om_python, open_server, secure_server, unique):
    root = fresh_workspace(open_server, "any", f"{unique}-open")
    assert "sdk ok" in drive(om_python, root, "any", "sdk")
    server, token = secure_server
    root = fresh_workspace(server, token, f"{unique}-secure")
    assert "sdk ok" in drive(om_python, root, token, "sdk")


def test_a_wrong_token_is_refused(om_python, secure_server):
    server, _ = secure_server
    assert "refused" in drive(om_python, f"{server.url}/api", "not-a-token", "refused")


def test_the_default_workspace_and_the_mlflow_client_see_the_same_models(
        om_python, open_server, unique):
    root = f"{open_server.url}/api"  # the default workspace
    drive(om_python, root, "any", "handoff", unique)
    mlflow = MlflowClient(tracking_uri=open_server.url, registry_uri=open_server.url)
    assert mlflow.get_registered_model(f"{unique}-shared").description == "from OM"
    version = mlflow.create_model_version(f"{unique}-shared", "s3://bucket/shared/1")
    assert version.version == "1"
    mlflow.create_registered_model(f"{unique}-mlflow", description="registered by MLflow")
    assert "sees mlflow ok" in drive(om_python, root, "any", "sees_mlflow", unique)
