"""Tenant traffic over real HTTP: gunicorn with auth required and Redis-backed rate limits."""
import email.utils
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import oci
import pytest
import requests
from aidp_python_client.aidataplatform_dp import MLOpsClient
from aidp_python_client.aidataplatform_dp import models as aidp
from cryptography.hazmat.primitives import serialization
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.conftest import MLFLOW_ROOT, POSTGRES_URL, Server, oci_root, serve
from tests.test_oci_http import signing_config

pytestmark = pytest.mark.server


def gateway(server, *args):
    """Run the `gateway` command against a running server's database."""
    result = subprocess.run([sys.executable, "-m", "gateway", *args], env=server.env,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def secure_server(tmp_path_factory, redis_url):
    env = {"GATEWAY_AUTH": "required", "GATEWAY_RATE_LIMIT": "1000/second",
           "GATEWAY_RATE_LIMIT_STORAGE": redis_url}
    server = serve(tmp_path_factory, "secure", workers=3, env=env)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tenants(secure_server):
    """Two tenants (workspaces) with a writer each, and an admin; returns their tokens."""
    tokens = {}
    for name in ("root", "ann", "ben"):
        gateway(secure_server, "principal", "create", name)
        tokens[name] = gateway(secure_server, "principal", "token", name)
    gateway(secure_server, "principal", "grant", "root", "*", "admin")
    for workspace, writer in (("tenant-a", "ann"), ("tenant-b", "ben")):
        requests.post(f"{secure_server.url}/api/3.0/mlflow/workspaces", json={"name": workspace},
                      headers=bearer(tokens["root"])).raise_for_status()
        gateway(secure_server, "principal", "grant", writer, workspace, "writer")
    return tokens


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def client_for(server, monkeypatch, **environment):
    for key, value in {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **environment}.items():
        monkeypatch.setenv(key, value)
    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def test_two_tenants_side_by_side_each_see_only_their_models(secure_server, tenants,
                                                             monkeypatch):
    ann = client_for(secure_server, monkeypatch, MLFLOW_TRACKING_TOKEN=tenants["ann"],
                     MLFLOW_WORKSPACE="tenant-a")
    ann.create_registered_model("shared-name", description="ann's")
    ann.create_model_version("shared-name", "s3://a/m")
    ben = client_for(secure_server, monkeypatch, MLFLOW_TRACKING_TOKEN=tenants["ben"],
                     MLFLOW_WORKSPACE="tenant-b")
    ben.create_registered_model("shared-name", description="ben's")
    assert ben.get_registered_model("shared-name").description == "ben's"
    assert ben.search_model_versions("name = 'shared-name'") == []
    monkeypatch.setenv("MLFLOW_WORKSPACE", "tenant-a")
    with pytest.raises(MlflowException) as error:
        ben.get_registered_model("shared-name")
    assert error.value.error_code == "PERMISSION_DENIED"


def test_mlflow_basic_auth(secure_server, tenants, monkeypatch):
    gateway(secure_server, "principal", "create", "basil")
    gateway(secure_server, "principal", "password", "basil", "--password", "basil-pass-1")
    gateway(secure_server, "principal", "grant", "basil", "tenant-a", "reader")
    client = client_for(secure_server, monkeypatch, MLFLOW_TRACKING_USERNAME="basil",
                        MLFLOW_TRACKING_PASSWORD="basil-pass-1", MLFLOW_WORKSPACE="tenant-a")
    assert client.search_registered_models() is not None
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    with pytest.raises(MlflowException) as error:
        client.search_registered_models()
    assert error.value.error_code == "UNAUTHENTICATED"


def test_401_403_404_on_each_face(secure_server, tenants):
    base = secure_server.url
    no_auth = requests.get(f"{base}{MLFLOW_ROOT}/registered-models/search")
    assert (no_auth.status_code, no_auth.json()["error_code"]) == (401, "UNAUTHENTICATED")
    assert "Bearer" in no_auth.headers["WWW-Authenticate"]
    denied = requests.get(f"{base}{MLFLOW_ROOT}/registered-models/search",
                          headers={**bearer(tenants["ann"]), "X-MLFLOW-WORKSPACE": "tenant-b"})
    assert (denied.status_code, denied.json()["error_code"]) == (403, "PERMISSION_DENIED")
    oci_url = f"{base}{oci_root('ocid1.p..hidden')}/registered-models/search"
    assert requests.get(oci_url).json()["code"] == "NotAuthenticated"
    hidden = requests.get(oci_url, headers=bearer(tenants["ann"]))
    assert (hidden.status_code, hidden.json()["code"]) == (404, "NotAuthorizedOrNotFound")


def register_signing_key(server, principal, platform, role, folder):
    """A new OCI SDK config whose public key is registered for a new principal with a role on
    a platform (through the `gateway` command, as an operator would)."""
    config = signing_config()
    key = serialization.load_pem_private_key(config["key_content"].encode(), None)
    pem = folder / "public.pem"
    pem.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    key_id = f"{config['tenancy']}/{config['user']}/{config['fingerprint']}"
    gateway(server, "principal", "create", principal)
    gateway(server, "principal", "add-key", principal, key_id, str(pem))
    gateway(server, "principal", "grant", principal, platform, role, "--platform")
    return config


@pytest.fixture(scope="module")
def oci_identity(secure_server, tenants, tmp_path_factory):
    """An OCI SDK config whose public key is registered for principal 'oci-ann'."""
    return register_signing_key(secure_server, "oci-ann", "ocid1.p..signed", "writer",
                                tmp_path_factory.mktemp("keys"))


def test_oci_sdk_authenticates_with_a_registered_key(secure_server, oci_identity):
    sdk = MLOpsClient(oci_identity, service_endpoint=secure_server.url,
                      retry_strategy=oci.retry.NoneRetryStrategy())
    sdk.create_registered_model("ocid1.p..signed", aidp.CreateRegisteredModelDetails(name="m"))
    version = sdk.create_workspace_model_version(
        "ocid1.p..signed", "ws", aidp.CreateModelVersionDetails(name="m", source="s3://a/m"))
    assert version.data.model_version.user_id == "oci-ann"
    with pytest.raises(oci.exceptions.ServiceError) as error:
        sdk.get_registered_model("ocid1.p..other", "m")
    assert (error.value.status, error.value.code) == (404, "NotAuthorizedOrNotFound")
    stranger = MLOpsClient(signing_config(), service_endpoint=secure_server.url,
                           retry_strategy=oci.retry.NoneRetryStrategy())
    with pytest.raises(oci.exceptions.ServiceError) as error:
        stranger.get_registered_model("ocid1.p..signed", "m")
    assert (error.value.status, error.value.code) == (401, "NotAuthenticated")


def signed_request(server, config, body, date=None):
    signer = oci.signer.Signer(config["tenancy"], config["user"], config["fingerprint"],
                               private_key_file_location=None,
                               private_key_content=config["key_content"])
    url = f"{server.url}{oci_root('ocid1.p..signed')}/registered-models/set-tag"
    headers = {"date": date} if date else {}
    return requests.Request("POST", url, json=body, headers=headers, auth=signer).prepare()


def test_replayed_and_altered_signed_requests_are_rejected(secure_server, oci_identity):
    body = {"name": "m", "key": "k", "value": "v"}
    session = requests.Session()
    prepared = signed_request(secure_server, oci_identity, body)
    assert session.send(prepared).status_code == 200
    replay = session.send(prepared)
    assert (replay.status_code, replay.json()["code"]) == (401, "NotAuthenticated")
    altered = signed_request(secure_server, oci_identity, body)
    altered.body = altered.body.replace(b'"v"', b'"w"')
    response = session.send(altered)
    assert response.status_code == 401 and "x-content-sha256" in response.json()["message"]
    moved = signed_request(secure_server, oci_identity, body)
    moved.url = moved.url.replace("set-tag", "delete-tag")
    assert session.send(moved).status_code == 401
    stale = email.utils.formatdate(time.time() - 600, usegmt=True)
    old = session.send(signed_request(secure_server, oci_identity, body, date=stale))
    assert old.status_code == 401 and "5 minutes" in old.json()["message"]


@pytest.fixture(scope="module")
def limited_pair(tmp_path_factory, redis_url):
    """Two gateway processes on one database sharing Redis counters: 10/minute per tenant."""
    url = POSTGRES_URL or f"sqlite:///{tmp_path_factory.mktemp('pair') / 'gateway.db'}"
    env = {"GATEWAY_RATE_LIMIT": "10/minute", "GATEWAY_RATE_LIMIT_STORAGE": redis_url}
    servers = [Server(url, workers=2, env=env), Server(url, workers=2, env=env)]
    yield servers
    for server in servers:
        server.stop()


def test_limits_hold_across_two_gateway_processes(limited_pair, unique):
    first, second = limited_pair
    name = unique.replace("t", "w", 1)
    requests.post(f"{first.url}/api/3.0/mlflow/workspaces", json={"name": name}
                  ).raise_for_status()

    def search(index):
        server = limited_pair[index % 2]
        return requests.get(f"{server.url}{MLFLOW_ROOT}/registered-models/search",
                            headers={"X-MLFLOW-WORKSPACE": name}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(search, range(30)))
    assert (codes.count(200), codes.count(429)) == (10, 20)


def test_mlflow_client_finishes_a_burst_over_the_limit(tmp_path, redis_url, monkeypatch,
                                                       unique):
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'burst.db'}"
    server = Server(url, workers=2, env={"GATEWAY_RATE_LIMIT": "4/second",
                                         "GATEWAY_RATE_LIMIT_STORAGE": redis_url})
    try:
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        client.create_registered_model(unique)
        numbers = [client.create_model_version(unique, f"s3://{i}/m").version for i in range(12)]
        assert numbers == [str(i) for i in range(1, 13)]
        assert len(client.search_model_versions(f"name = '{unique}'")) == 12
    finally:
        server.stop()
