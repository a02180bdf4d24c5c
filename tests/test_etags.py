"""etag on every answer carrying one model or version; if-match guards every change."""
import pytest


@pytest.fixture
def model(api):
    api.model("m")
    api.version("m")
    return "m"


def etag(api, version=None):
    if version:
        return api.get("model-versions/get", query_string={"name": "m", "version": version}
                       ).headers["etag"]
    return api.get("registered-models/get", query_string={"name": "m"}).headers["etag"]


def test_etag_changes_with_every_visible_change(api, model):
    seen = {etag(api)}
    api.post("registered-models/set-tag", json={"name": "m", "key": "k", "value": "v"})
    seen.add(etag(api))
    api.post("registered-models/alias", json={"name": "m", "alias": "a", "version": "1"})
    seen.add(etag(api))
    assert len(seen) == 3
    before = etag(api, "1")
    api.post("model-versions/set-tag", json={"name": "m", "version": "1", "key": "k",
                                             "value": "v"})
    assert etag(api, "1") != before
    assert etag(api, "1") == etag(api, "1")


def test_answers_carrying_an_entity_have_its_etag(api, model):
    created = api.post("registered-models/create", json={"name": "n"})
    assert created.headers["etag"] == api.get("registered-models/get",
                                              query_string={"name": "n"}).headers["etag"]
    api.post("registered-models/alias", json={"name": "m", "alias": "a", "version": "1"})
    by_alias = api.get("registered-models/alias", query_string={"name": "m", "alias": "a"})
    assert by_alias.headers["etag"] == etag(api, "1")


# (method, path, body, which etag guards it)
GUARDED = [
    ("patch", "registered-models/update", {"description": "d"}, None),
    ("post", "registered-models/rename", {"new_name": "m2"}, None),
    ("post", "registered-models/set-tag", {"key": "k", "value": "v"}, None),
    ("delete", "registered-models/delete-tag", {"key": "k"}, None),
    ("post", "registered-models/alias", {"alias": "a", "version": "1"}, None),
    ("delete", "registered-models/alias", {"alias": "a"}, None),
    ("delete", "registered-models/delete", {}, None),
    ("patch", "model-versions/update", {"version": "1", "description": "d"}, "1"),
    ("post", "model-versions/transition-stage", {"version": "1", "stage": "Staging"}, "1"),
    ("post", "model-versions/set-tag", {"version": "1", "key": "k", "value": "v"}, "1"),
    ("delete", "model-versions/delete-tag", {"version": "1", "key": "k"}, "1"),
    ("delete", "model-versions/delete", {"version": "1"}, "1"),
]


@pytest.mark.parametrize("method, path, body, version", GUARDED)
def test_stale_if_match_is_412_and_changes_nothing(api, model, method, path, body, version):
    before_model, before_version = etag(api), etag(api, "1")
    response = getattr(api, method)(path, json={"name": "m", **body},
                                    headers={"If-Match": '"0000stale"'})
    assert response.status_code == 412
    assert etag(api) == before_model and etag(api, "1") == before_version


@pytest.mark.parametrize("method, path, body, version", GUARDED)
def test_current_if_match_lets_the_change_through(api, model, method, path, body, version):
    current = etag(api, version)
    response = getattr(api, method)(path, json={"name": "m", **body},
                                    headers={"If-Match": f'"{current}"'})
    assert response.status_code == 200, response.json


def test_if_match_star_and_lists(api, model):
    assert api.patch("registered-models/update", json={"name": "m", "description": "x"},
                     headers={"If-Match": "*"}).status_code == 200
    current = etag(api)
    assert api.patch("registered-models/update", json={"name": "m", "description": "y"},
                     headers={"If-Match": f'"nope", W/"{current}"'}).status_code == 200


def test_oci_face_says_no_etag_match(oci):
    oci.model("m")
    response = oci.post("registered-models/update", json={"name": "m", "description": "d"},
                        headers={"if-match": "stale"})
    assert (response.status_code, response.json["code"]) == (412, "NoEtagMatch")


def test_etags_are_quoted_and_if_match_takes_every_spelling(api, model):
    current = etag(api)
    assert current.startswith('"') and current.endswith('"') and len(current) == 34
    for spell in (lambda tag: tag, lambda tag: f"W/{tag}", lambda tag: tag.strip('"'),
                  lambda tag: f'"other", {tag}'):
        answer = api.patch("registered-models/update", json={"name": "m", "description": "d"},
                           headers={"If-Match": spell(current)})
        assert answer.status_code == 200, (spell(current), answer.json)
        current = answer.headers["etag"]
