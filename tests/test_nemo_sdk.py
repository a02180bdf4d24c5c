"""NeMo's own SDK (nemo-platform 0.3.0, unmodified) against a real gunicorn gateway."""
import pytest
from nemo_platform import ConflictError, NeMoPlatform, NotFoundError, UnprocessableEntityError

pytestmark = pytest.mark.server


@pytest.fixture
def sdk(server, unique, monkeypatch):
    """A client on a fresh workspace, so tests sharing the server never see each other."""
    import requests
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
