"""The holes an adversarial review found, each shut and tested over real HTTP (gunicorn, auth
required, counters in Redis): issue "Security hardening", items 1-17."""
import base64
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests import processes
from tests.conftest import MLFLOW_ROOT, POSTGRES_URL, Server, oci_root
from tests.test_tenants_http import gateway as cli
from tests.test_tenants_http import register_signing_key

pytestmark = pytest.mark.server
PLATFORM = "ocid1.p..secure"
WORKSPACES = "/api/3.0/mlflow/workspaces"
SCRAPE = "scrape-token-for-prometheus"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def hardened(tmp_path_factory, redis_url):
    url = POSTGRES_URL or f"sqlite:///{tmp_path_factory.mktemp('hardened') / 'gateway.db'}"
    server = Server(url, workers=2, env={
        "GATEWAY_AUTH": "required", "GATEWAY_AUTH_CACHE_SECONDS": "0",
        "GATEWAY_RATE_LIMIT_STORAGE": redis_url, "GATEWAY_RATE_LIMIT": "1000/second",
        "GATEWAY_RATE_LIMIT_OVERRIDES": '{"quota": "6/minute"}',
        "GATEWAY_ANONYMOUS_RATE_LIMIT": "1000/minute", "GATEWAY_LOGIN_FAILURE_LIMIT": "3/minute",
        "GATEWAY_METRICS_TOKEN": SCRAPE, "GATEWAY_PUBLIC_HOSTS": '["127.0.0.1", "localhost"]'})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def people(hardened):
    """root (admin everywhere), ann (writer in team-a), zed (admin of zone only)."""
    tokens = {}
    for name in ("root", "ann", "zed", "svc"):
        cli(hardened, "principal", "create", name, *(["--act-for-others"] if name == "svc" else []))
        tokens[name] = cli(hardened, "principal", "token", name)
    cli(hardened, "principal", "grant", "root", "*", "admin")
    for workspace in ("team-a", "team-b", "zone", "quota"):
        requests.post(hardened.url + WORKSPACES, json={"name": workspace},
                      headers=bearer(tokens["root"]), timeout=30).raise_for_status()
    cli(hardened, "principal", "grant", "ann", "team-a", "writer")
    cli(hardened, "principal", "grant", "ann", "quota", "writer")
    cli(hardened, "principal", "grant", "zed", "zone", "admin")
    cli(hardened, "principal", "grant", "svc", "team-a", "writer")
    return tokens


def _workspace_names(server, tokens):
    listed = requests.get(server.url + WORKSPACES, headers=bearer(tokens["root"]), timeout=30)
    return {w["name"] for w in listed.json()["workspaces"]}


def test_1_open_endpoints_and_options_or_head_never_create_a_platform(hardened, people):
    before = _workspace_names(hardened, people)
    root = f"{hardened.url}/20260430/aiDataPlatforms/ocid1.p..probe-{{}}/mlops"
    for index, method in enumerate(["OPTIONS", "HEAD", "POST", "PUT", "DELETE", "GET"] * 2):
        for path in ("/health", "/version", "/api/2.0/mlflow/registered-models/create"):
            requests.request(method, root.format(index) + path, timeout=30)
    after = _workspace_names(hardened, people)
    assert after == before  # 36 anonymous requests, no new platform registry
    # An authorized write does create it.
    made = requests.post(root.format("x") + "/api/2.0/mlflow/registered-models/create",
                         json={"name": "m"}, headers=bearer(people["root"]), timeout=30)
    assert made.status_code == 200
    assert len(_workspace_names(hardened, people) - before) == 1


def test_2_anonymous_floods_spend_no_tenant_budget(hardened, people):
    # quota's budget is 6/minute: 30 anonymous calls to its paths first, then its writer.
    search = f"{hardened.url}{MLFLOW_ROOT}/registered-models/search"
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: requests.get(
            search, headers={"X-MLFLOW-WORKSPACE": "quota"}, timeout=30).status_code, range(30)))
    assert set(codes) == {401}
    mine = [requests.get(search, headers={**bearer(people["ann"]), "X-MLFLOW-WORKSPACE": "quota"},
                         timeout=30).status_code for _ in range(6)]
    assert mine == [200] * 6


def test_2_anonymous_traffic_has_a_limit_of_its_own_by_address(tmp_path, redis_url):
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'anon.db'}"
    server = Server(url, workers=2, env={
        "GATEWAY_AUTH": "required", "GATEWAY_RATE_LIMIT_STORAGE": redis_url,
        "GATEWAY_ANONYMOUS_RATE_LIMIT": "10/minute", "GATEWAY_TRUSTED_PROXIES": '["127.0.0.1"]'})
    try:
        search = f"{server.url}{MLFLOW_ROOT}/registered-models/search"
        codes = [requests.get(search, timeout=30, headers={"X-Forwarded-For": "203.0.113.7"}
                              ).status_code for _ in range(14)]
        assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}
        # Another client (as the trusted proxy reports it) has its own budget.
        other = requests.get(search, timeout=30, headers={"X-Forwarded-For": "203.0.113.8"})
        assert other.status_code == 401
        # A client behind no trusted proxy cannot pick its address: the peer is what counts.
    finally:
        server.stop()


@pytest.fixture(scope="module")
def signer(hardened, people, tmp_path_factory):
    return register_signing_key(hardened, "oci-sig", "ocid1.p..signed", "admin",
                                tmp_path_factory.mktemp("keys"))


def _signed(server, config, method, path, body=None, headers=None):
    import oci
    signer = oci.signer.Signer(config["tenancy"], config["user"], config["fingerprint"],
                               private_key_file_location=None,
                               private_key_content=config["key_content"])
    url = f"{server.url}{oci_root('ocid1.p..signed')}/{path}"
    return requests.Request(method, url, json=body, headers=headers or {}, auth=signer).prepare()


def test_3_an_altered_spelling_of_a_used_signature_is_refused(hardened, signer):
    session = requests.Session()
    session.send(_signed(hardened, signer, "POST", "registered-models/create",
                         {"name": "replayed"}))
    first = _signed(hardened, signer, "POST", "model-versions/create",
                    {"name": "replayed", "source": "s3://b/m"})
    assert session.send(first).status_code == 200
    authorization = first.headers["authorization"]
    signature = authorization.split('signature="')[1].split('"')[0]
    for prefix in ("!", ".", "*", "#", " "):
        first.headers["authorization"] = authorization.replace(
            f'signature="{signature}"', f'signature="{prefix}{signature}"')
        answer = session.send(first)
        assert answer.status_code == 401, (prefix, answer.text)
    versions = session.send(_signed(hardened, signer, "GET",
                                    "model-versions/search?filter=name%3D%27replayed%27")).json()
    assert len(versions["model_versions"]) == 1


def test_4_a_body_the_gateway_reads_must_be_signed_whatever_the_verb(hardened, signer):
    session = requests.Session()
    for name in ("keep", "target"):
        session.send(_signed(hardened, signer, "POST", "registered-models/create", {"name": name}))
    # A DELETE with a body, signed without its body headers (as for a bodiless DELETE).
    import oci
    request = requests.Request(
        "DELETE", f"{hardened.url}{oci_root('ocid1.p..signed')}/registered-models/delete",
        json={"name": "target"}).prepare()
    body = request.body
    request.body = None
    request.headers.pop("Content-Length", None)
    request.headers.pop("Content-Type", None)
    oci.signer.Signer(signer["tenancy"], signer["user"], signer["fingerprint"],
                      private_key_file_location=None,
                      private_key_content=signer["key_content"])(request)
    request.body = body
    request.headers["Content-Type"] = "application/json"
    request.headers["Content-Length"] = str(len(body))
    refused = session.send(request)
    assert refused.status_code == 401 and "must cover" in refused.json()["message"]
    got = session.send(_signed(hardened, signer, "GET", "registered-models/get?name=target"))
    assert got.status_code == 200  # still there


def test_5_set_default_needs_write_in_default(hardened, people):
    base = f"{hardened.url}{MLFLOW_ROOT}"
    requests.post(f"{base}/registered-models/create", json={"name": "zoned"}, timeout=30,
                  headers={**bearer(people["zed"]), "X-MLFLOW-WORKSPACE": "zone"}
                  ).raise_for_status()
    answer = requests.delete(f"{hardened.url}{WORKSPACES}/zone?mode=SET_DEFAULT", timeout=30,
                             headers=bearer(people["zed"]))
    assert answer.status_code == 403
    moved = requests.get(f"{base}/registered-models/get?name=zoned", timeout=30,
                         headers=bearer(people["root"]))
    assert moved.status_code == 404  # nothing moved into default
    still = requests.get(f"{base}/registered-models/get?name=zoned", timeout=30,
                         headers={**bearer(people["root"]), "X-MLFLOW-WORKSPACE": "zone"})
    assert still.status_code == 200


def _basic(name, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_6_failed_logins_are_limited_by_address_and_user(hardened, people):
    cli(hardened, "principal", "create", "pat")
    cli(hardened, "principal", "password", "pat", "--password", "pat-password-1")
    cli(hardened, "principal", "grant", "pat", "team-a", "reader")
    search = f"{hardened.url}{MLFLOW_ROOT}/registered-models/search"
    codes = [requests.get(search, headers=_basic("pat", f"wrong-{i}"), timeout=30).status_code
             for i in range(5)]
    assert codes[:3] == [401] * 3 and set(codes[3:]) == {429}
    limited = requests.get(search, headers=_basic("pat", "wrong-again"), timeout=30)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_9_a_base_model_in_an_unreadable_workspace_reads_as_missing(hardened, people):
    nemo = f"{hardened.url}/apis/models/v2/workspaces"
    requests.post(f"{nemo}/team-b/models", json={"name": "secret-model"}, timeout=30,
                  headers=bearer(people["root"])).raise_for_status()
    answers = [requests.post(f"{nemo}/team-a/models", timeout=30, headers=bearer(people["ann"]),
                             json={"name": f"probe-{i}", "base_model": base})
               for i, base in enumerate(("team-b/secret-model", "team-b/no-such-model"))]
    assert [a.status_code for a in answers] == [422, 422]
    assert answers[0].json()["detail"].replace("secret-model", "X") == answers[1].json()[
        "detail"].replace("no-such-model", "X")
    assert requests.get(f"{nemo}/team-a/models/probe-0", headers=bearer(people["ann"]),
                        timeout=30).status_code == 404


def test_10_a_revoked_admin_gets_no_replay(hardened, people):
    cli(hardened, "principal", "grant", "zed", "team-b", "admin")
    patch = dict(url=f"{hardened.url}{WORKSPACES}/team-b", json={"description": "mine"},
                 headers={**bearer(people["zed"]), "opc-retry-token": "ws-patch-1"}, timeout=30)
    assert requests.patch(**patch).status_code == 200
    cli(hardened, "principal", "revoke", "zed", "team-b")
    assert requests.patch(**patch).status_code == 403


def test_11_grants_die_with_their_workspace_and_need_one(hardened, people):
    cli(hardened, "principal", "create", "gil")
    token = cli(hardened, "principal", "token", "gil")
    requests.post(hardened.url + WORKSPACES, json={"name": "fleeting"}, timeout=30,
                  headers=bearer(people["root"])).raise_for_status()
    cli(hardened, "principal", "grant", "gil", "fleeting", "writer")
    requests.delete(f"{hardened.url}{WORKSPACES}/fleeting", timeout=30,
                    headers=bearer(people["root"])).raise_for_status()
    requests.post(hardened.url + WORKSPACES, json={"name": "fleeting"}, timeout=30,
                  headers=bearer(people["root"])).raise_for_status()
    search = f"{hardened.url}{MLFLOW_ROOT}/registered-models/search"
    assert requests.get(search, headers={**bearer(token), "X-MLFLOW-WORKSPACE": "fleeting"},
                        timeout=30).status_code == 403
    import subprocess
    missing = subprocess.run([sys.executable, "-m", "gateway", "principal", "grant", "gil",
                              "nowhere", "reader"], env=hardened.env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode != 0 and "Workspace 'nowhere' not found" in missing.stderr


def test_12_credentials_can_be_listed_revoked_and_expire(hardened, people):
    import subprocess
    cli(hardened, "principal", "create", "tia")
    cli(hardened, "principal", "grant", "tia", "team-a", "reader")
    issued = subprocess.run([sys.executable, "-m", "gateway", "principal", "token", "tia"],
                            env=hardened.env, capture_output=True, text=True, check=True)
    token, token_id = issued.stdout.strip(), issued.stderr.split("token id ")[1].split()[0]
    short = cli(hardened, "principal", "token", "tia", "--expires-in", "15s")
    search = f"{hardened.url}{MLFLOW_ROOT}/registered-models/search"
    headers = {"X-MLFLOW-WORKSPACE": "team-a"}
    assert requests.get(search, headers={**headers, **bearer(token)}, timeout=30).ok
    assert requests.get(search, headers={**headers, **bearer(short)}, timeout=30).ok
    assert f"{token_id}  tia" in cli(hardened, "token", "list", "tia")
    cli(hardened, "token", "revoke", token_id)
    assert requests.get(search, headers={**headers, **bearer(token)},
                        timeout=30).status_code == 401
    # The short-lived token keeps working for a while, then stops once its 15 s are up.
    started = time.monotonic()
    processes.wait_for(lambda: requests.get(search, headers={**headers, **bearer(short)},
                                            timeout=30).status_code == 401, 60,
                       "the 15 s token to expire", pause=0.5)
    assert time.monotonic() - started > 5
    assert "tia" in cli(hardened, "principal", "list")
    cli(hardened, "principal", "delete", "tia")
    assert "tia" not in cli(hardened, "principal", "list")


def test_14_metrics_are_for_operators(hardened, people):
    metrics = f"{hardened.url}/metrics"
    assert requests.get(metrics, headers=bearer(people["ann"]), timeout=30).status_code == 403
    assert requests.get(metrics, timeout=30).status_code == 401
    assert requests.get(metrics, headers=bearer(SCRAPE), timeout=30).status_code == 200
    assert requests.get(metrics, headers=bearer(people["root"]), timeout=30).status_code == 200


def test_15_chunked_bodies_over_the_limit_are_413_and_etags_are_quoted(tmp_path):
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'big.db'}"
    server = Server(url, workers=1, env={"GATEWAY_MAX_CONTENT_LENGTH": "4096"})
    try:
        create = f"{server.url}{MLFLOW_ROOT}/registered-models/create"
        chunked = requests.post(create, data=iter([b"{", b" " * 9000, b"}"]), timeout=30,
                                headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413, chunked.text
        made = requests.post(create, json={"name": "q"}, timeout=30)
        assert made.headers["etag"].startswith('"') and made.headers["etag"].endswith('"')
    finally:
        server.stop()


def test_16_retry_tokens_are_per_acting_user_and_signatures_name_our_host(hardened, people,
                                                                          signer):
    create = f"{hardened.url}{MLFLOW_ROOT}/registered-models/create"
    answers = [requests.post(create, json={"name": f"acted-{user}"}, timeout=30, headers={
        **bearer(people["svc"]), "X-MLFLOW-WORKSPACE": "team-a", "dh-user-principal": user,
        "opc-retry-token": "shared-by-svc"}) for user in ("u1", "u2")]
    assert [a.json()["registered_model"]["name"] for a in answers] == ["acted-u1", "acted-u2"]
    foreign = _signed(hardened, signer, "GET", "registered-models/search",
                      headers={"host": "evil.example.com"})
    foreign.url = foreign.url  # sent to us, signed for another host
    answer = requests.Session().send(foreign)
    assert answer.status_code == 401 and "host" in answer.json()["message"]


def test_17_stored_sizes_are_bounded(hardened, people):
    headers = {**bearer(people["ann"]), "X-MLFLOW-WORKSPACE": "team-a"}
    many = [{"key": f"k{i}", "value": "v"} for i in range(101)]
    answer = requests.post(f"{hardened.url}{MLFLOW_ROOT}/registered-models/create", timeout=30,
                           json={"name": "tagged", "tags": many}, headers=headers)
    assert answer.status_code == 400 and "at most 100 tags" in answer.json()["message"]
    huge = requests.post(f"{hardened.url}/apis/models/v2/workspaces/team-a/models", timeout=30,
                         json={"name": "bulky", "custom_fields": {"x": "y" * 70000}},
                         headers=bearer(people["ann"]))
    assert huge.status_code == 422 and "too large" in huge.text
