"""NeMo's own SDK (nemo-platform 0.3.0, unmodified) against a real gunicorn gateway."""
import json

import pytest
import requests
from nemo_platform import (ConflictError, NeMoPlatform, NotFoundError, PermissionDeniedError,
                           UnprocessableEntityError)

from tests.conftest import serve
from tests.processes import wait_for
from tests.test_tenants_http import gateway as cli

pytestmark = pytest.mark.server


@pytest.fixture
def sdk(server, unique, monkeypatch):
    """A client on a fresh workspace, so tests sharing the server never see each other."""
    workspace = unique.replace("t", "n", 1)
    requests.post(f"{server.url}/api/3.0/mlflow/workspaces",
                  json={"name": workspace}).raise_for_status()
    monkeypatch.delenv("NMP_BASE_URL", raising=False)
    return NeMoPlatform(base_url=server.url, workspace=workspace, max_retries=0)


def test_model_entity_lifecycle(sdk):
    created = sdk.models.create(name="llama-3.1-8b", description="base", project="team/p",
                                fileset=f"{sdk.workspace}/llama", finetuning_type="lora",
                                custom_fields={"tier": "gold"},
                                api_endpoint={"url": "https://nim.example.com/v1",
                                              "model_id": "meta/llama-3.1-8b"})
    assert created.name == "llama-3.1-8b" and created.workspace == sdk.workspace
    assert created.id and created.created_at.tzinfo is not None
    assert created.custom_fields == {"tier": "gold"}
    assert str(created.api_endpoint.url).startswith("https://nim.example.com")
    fetched = sdk.models.retrieve("llama-3.1-8b")
    assert fetched.description == "base" and fetched.fileset == f"{sdk.workspace}/llama"
    updated = sdk.models.update("llama-3.1-8b", description="tuned")
    assert (updated.description, updated.project) == ("tuned", "team/p")
    assert updated.updated_at >= created.updated_at
    sdk.models.delete("llama-3.1-8b")
    with pytest.raises(NotFoundError):
        sdk.models.retrieve("llama-3.1-8b")


def test_list_with_filters_and_paging(sdk):
    for name in ("llama-a", "llama-b", "mistral-c", "llama-d", "phi-e"):
        sdk.models.create(name=name, project="llm")
    everything = [m.name for m in sdk.models.list(page_size=2)]  # follows every page
    assert everything == ["llama-a", "llama-b", "mistral-c", "llama-d", "phi-e"]
    first = sdk.models.list(page_size=2, sort="-name")
    assert [m.name for m in first.data] == ["phi-e", "mistral-c"]
    assert first.pagination.total_results == 5 and first.pagination.total_pages == 3
    llamas = sdk.models.list(filter={"name": {"like": "llama"}}, sort="name")
    assert [m.name for m in llamas] == ["llama-a", "llama-b", "llama-d"]
    chosen = sdk.models.list(filter={"name": {"in_": ["phi-e", "llama-a"]}}, sort="name")
    assert [m.name for m in chosen] == ["llama-a", "phi-e"]
    exact = sdk.models.list(filter={"name": "mistral-c"})
    assert [m.name for m in exact] == ["mistral-c"]
    stamp = sdk.models.retrieve("llama-d").created_at
    newer = sdk.models.list(filter={"created_at": {"gte": stamp}}, sort="created_at")
    assert [m.name for m in newer] == ["llama-d", "phi-e"]


def test_adapters(sdk):
    sdk.models.create(name="base")
    adapter = sdk.models.adapters.create("base", name="lora-1", fileset=f"{sdk.workspace}/lora",
                                         finetuning_type="lora", lora_config={"rank": 8})
    assert (adapter.name, adapter.enabled, adapter.lora_config.rank) == ("lora-1", True, 8)
    assert [a.name for a in sdk.models.retrieve("base").adapters] == ["lora-1"]
    changed = sdk.models.adapters.update("lora-1", model_name="base", enabled=False)
    assert changed.enabled is False
    sdk.models.adapters.delete("lora-1", model_name="base")
    assert not sdk.models.retrieve("base").adapters


def test_errors_raise_the_sdks_exceptions(sdk):
    sdk.models.create(name="taken")
    with pytest.raises(ConflictError):
        sdk.models.create(name="taken")
    with pytest.raises(UnprocessableEntityError) as error:
        sdk.models.create(name="bad name!")
    assert error.value.body["detail"][0]["loc"] == ["body", "name"]
    assert [m.name for m in sdk.models.list()] == ["taken"]


def test_workspace_lifecycle_with_the_sdk_alone(server, unique):
    client = NeMoPlatform(base_url=server.url, max_retries=0)
    name = f"{unique}-team"
    created = client.workspaces.create(name=name, description="first")
    assert (created.name, created.description) == (name, "first")
    assert created.id and created.created_at.tzinfo is not None
    assert client.workspaces.create(name=name, exist_ok=True).id == created.id
    with pytest.raises(ConflictError):
        client.workspaces.create(name=name)
    with pytest.raises(UnprocessableEntityError):
        client.workspaces.create(name=f"{unique}--bad")
    assert client.workspaces.retrieve(name).id == created.id
    assert client.workspaces.update(name, description="second").description == "second"
    listed = [w.name for w in client.workspaces.list(page_size=1)]  # follows every page
    assert {name, "default", "system"} <= set(listed)
    assert [w.name for w in client.workspaces.list(filter=f'name:"{name}"')] == [name]
    assert [w.name for w in client.workspaces.list(
        filter=json.dumps({"name": {"$like": unique}, "description": "second"}))] == [name]

    scoped = NeMoPlatform(base_url=server.url, workspace=name, max_retries=0)
    scoped.models.create(name="inside")
    deleted = client.workspaces.delete(name)
    assert deleted.id == created.id
    with pytest.raises(NotFoundError):
        client.workspaces.retrieve(name)
    with pytest.raises(NotFoundError):
        scoped.models.list()
    client.workspaces.create(name=name)
    assert [m.name for m in scoped.models.list()] == []  # the namesake starts empty


def test_members_round_trip(sdk):
    members = sdk.workspaces.members
    added = members.create(workspace=sdk.workspace, principal="bob@example.com",
                           roles=["Editor"])
    assert (added.principal, added.roles) == ("bob@example.com", ["Editor"])
    assert added.granted_at is not None
    listed = members.list(workspace=sdk.workspace).data
    assert [(m.principal, m.roles) for m in listed] == [("bob@example.com", ["Editor"])]
    changed = members.update("bob@example.com", workspace=sdk.workspace, roles=["Viewer"])
    assert changed.roles == ["Viewer"]
    with pytest.raises(ConflictError):
        members.create(workspace=sdk.workspace, principal="bob@example.com", roles=["Admin"])
    assert members.delete("bob@example.com", workspace=sdk.workspace).id == "bob@example.com"
    assert members.list(workspace=sdk.workspace).data == []
    with pytest.raises(NotFoundError):
        members.delete("bob@example.com", workspace=sdk.workspace)
    with pytest.raises(UnprocessableEntityError):
        members.create(workspace=sdk.workspace, principal="bob", roles=["Owner"])


def test_typed_filters_the_sdk_sends(sdk):
    sdk.models.create(name="base-a")
    sdk.models.create(name="tuned-a", base_model="base-a", finetuning_type="lora",
                      prompt={"system_prompt": "hi"})
    sdk.models.create(name="tuned_b", base_model=f"{sdk.workspace}/base-a",
                      finetuning_type="dpo")
    sdk.adapters.create(name="ad-1", model="tuned-a", fileset=f"{sdk.workspace}/ad-1",
                        finetuning_type="lora")

    def listed(**filters):
        return sorted(m.name for m in sdk.models.list(filter=filters))
    assert listed(base_model=True) == ["tuned-a", "tuned_b"]
    assert listed(base_model=False) == ["base-a"]
    assert listed(base_model={"name": {"like": "BASE-A"}}) == ["tuned-a", "tuned_b"]
    assert listed(base_model="base-a") == ["tuned-a"]
    assert listed(finetuning_type="dpo") == ["tuned_b"]
    assert listed(finetuning_type=False) == ["base-a"]
    assert listed(adapters=True) == ["tuned-a"]
    assert listed(adapters={"finetuning_type": "dpo"}) == []
    assert listed(lora_enabled=True, prompt=True) == ["tuned-a"]
    assert listed(name={"like": "_"}) == ["tuned_b"]
    assert listed(name={"nin": ["base-a"]}, workspace=sdk.workspace) == ["tuned-a", "tuned_b"]
    assert listed(description={"eq": "none"}) == []


def test_workspace_level_adapters(sdk, unique):
    sdk.models.create(name="base")
    made = sdk.adapters.create(name="ad-1", model="base", fileset=f"{sdk.workspace}/ad-1",
                               finetuning_type="lora", lora_config={"rank": 16},
                               description="first")
    assert (made.workspace, made.model, made.lora_config.rank) == (
        sdk.workspace, f"{sdk.workspace}/base", 16)
    sdk.adapters.create(name="ad-2", model=f"{sdk.workspace}/base", enabled=False,
                        fileset=f"{sdk.workspace}/ad-2", finetuning_type="dpo")
    with pytest.raises(ConflictError):  # unique in the workspace, whatever the model
        sdk.models.create(name="other")
        sdk.adapters.create(name="ad-1", model="other", fileset=f"{sdk.workspace}/x",
                            finetuning_type="lora")
    assert sdk.adapters.retrieve("ad-1").description == "first"
    assert [a.name for a in sdk.adapters.list()] == ["ad-1", "ad-2"]
    assert [a.name for a in sdk.adapters.list(filter={"enabled": False})] == ["ad-2"]
    assert [a.name for a in sdk.adapters.list(filter={"name": {"like": "AD-1"}})] == ["ad-1"]
    assert sdk.adapters.patch("ad-2", enabled=True).enabled is True
    assert [a.name for a in sdk.models.retrieve("base").adapters] == ["ad-1", "ad-2"]
    sdk.adapters.delete("ad-2")
    with pytest.raises(NotFoundError):
        sdk.adapters.retrieve("ad-2")
    with pytest.raises(NotFoundError):
        sdk.adapters.create(name="ad-3", model="ghost", fileset=f"{sdk.workspace}/x",
                            finetuning_type="lora")


def test_backend_format_null_clears(sdk):
    sdk.models.create(name="m", backend_format="OPENAI_CHAT", project="p")
    cleared = sdk.models.update("m", backend_format=None)
    assert (cleared.backend_format, cleared.project) == (None, "p")
    assert sdk.models.retrieve("m").backend_format is None


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    """auth required, with the default 5 s role cache; root is admin of every workspace."""
    server = serve(tmp_path_factory, "nemo-secure", env={"GATEWAY_AUTH": "required"})
    tokens = {}
    for name in ("root", "ann", "bob"):
        cli(server, "principal", "create", name)
        tokens[name] = cli(server, "principal", "token", name)
    cli(server, "principal", "grant", "root", "*", "admin")
    yield server, tokens
    server.stop()


def test_a_member_added_through_nemo_works_through_mlflow_at_once(secure, unique):
    server, tokens = secure
    ann = NeMoPlatform(base_url=server.url, access_token=tokens["ann"], max_retries=0)
    name = f"{unique}-ann"
    assert ann.workspaces.create(name=name).created_by == "ann"  # any principal may create
    bob_mlflow = {"Authorization": f"Bearer {tokens['bob']}", "X-MLFLOW-WORKSPACE": name}
    create = f"{server.url}/api/2.0/mlflow/registered-models/create"
    assert requests.post(create, json={"name": "m"}, headers=bob_mlflow,
                         timeout=30).status_code == 403  # bob's "no role" is not remembered
    ann.workspaces.members.create(workspace=name, principal="bob", roles=["Editor"])
    assert requests.post(create, json={"name": "m"}, headers=bob_mlflow,
                         timeout=30).status_code == 200
    bob = NeMoPlatform(base_url=server.url, access_token=tokens["bob"], workspace=name,
                       max_retries=0)
    assert [m.name for m in bob.models.list()] == ["m"]
    with pytest.raises(PermissionDeniedError):
        bob.workspaces.members.list(workspace=name)
    assert {m.principal for m in ann.workspaces.members.list(workspace=name).data} == {
        "ann", "bob"}
    # The operator's grant shows as a member; outsiders see no such workspace.
    cli(server, "principal", "grant", "root", name, "reader")
    assert "root" in {m.principal for m in ann.workspaces.members.list(workspace=name).data}
    outsider = NeMoPlatform(base_url=server.url, access_token=tokens["bob"], max_retries=0)
    assert name in {w.name for w in outsider.workspaces.list()}
    ann.workspaces.members.delete("bob", workspace=name)
    # A revocation reaches every worker within GATEWAY_AUTH_CACHE_SECONDS (5 s here).
    wait_for(lambda: name not in {w.name for w in outsider.workspaces.list()}, 30,
             "bob's removal to apply", pause=0.5)
