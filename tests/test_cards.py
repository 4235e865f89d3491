"""Model cards: metadata parsed from README.md, derived tags, filtering on them, validate-yaml."""
import pytest

from huggingface_hub import ModelCard


@pytest.fixture(scope="module")
def carded(hub):
    tag = hub.unique("wharftag")
    dataset = hub.unique("wharf-ds")
    library = hub.unique("wharflib")
    card = f"""---
language:
- fr
- en
license: MIT
datasets:
- {dataset}
tags:
- {tag}
pipeline_tag: text-classification
library_name: {library}
base_model: acme/base
---

# A model with a card
"""
    repo = hub.create_repo(hub.alice, prefix="carded")
    hub.alice_api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo)
    return repo, tag, dataset, library


def test_card_data_and_derived_tags(hub, carded):
    repo, tag, dataset, library = carded
    info = hub.anon_api.model_info(repo)
    assert info.pipeline_tag == "text-classification"
    assert info.library_name == library
    tags = info.tags
    for expected in (library, tag, "text-classification", "fr", "en", f"dataset:{dataset}", "license:mit",
                     "base_model:acme/base"):
        assert expected in tags, (expected, tags)
    assert tags[0] == library and tags[-1] == "region:us"
    assert len(tags) == len(set(tags))
    cd = info.card_data
    assert cd.license == "MIT" and cd.language == ["fr", "en"] and cd.datasets == [dataset]
    raw = hub.request("GET", f"/api/models/{repo}").json()
    assert raw["cardData"]["pipeline_tag"] == "text-classification"
    assert "A model with a card" in ModelCard.load(repo).text


def test_filter_listing_by_derived_tags(hub, carded):
    repo, tag, dataset, library = carded
    plain = hub.create_repo(hub.alice, prefix="uncarded")

    def ids(**kw):
        return {m.id for m in hub.anon_api.list_models(author="alice", **kw)}

    for f in (tag, f"dataset:{dataset}", library, "license:mit", "fr"):
        found = ids(filter=f)
        assert repo in found and plain not in found, f
    assert ids(filter=[tag, "license:mit"]) == {repo}
    assert ids(filter=[tag, "license:apache-2.0"]) == set()
    assert repo in ids(pipeline_tag="text-classification")
    assert plain not in ids(pipeline_tag="text-classification")
    assert ids(filter=library) == {repo}
    r = hub.request("GET", "/api/models", params={"library": library})
    assert [m["id"] for m in r.json()] == [repo]
    assert ids(filter=hub.unique("nothing-has-this")) == set()
    # Raw query string forms the clients send.
    r = hub.request("GET", "/api/models", params=[("filter", tag), ("filter", f"dataset:{dataset}")])
    assert [m["id"] for m in r.json()] == [repo]
    listed = hub.request("GET", "/api/models", params={"search": repo.split("/")[1], "cardData": "true"}).json()
    assert listed[0]["cardData"]["license"] == "MIT" and "license:mit" in listed[0]["tags"]


def test_card_update_reindexes(hub):
    repo = hub.create_repo(hub.alice, prefix="recard")
    tag = hub.unique("first")
    hub.commit_ok(repo, [hub.op_file("README.md", f"---\ntags: [{tag}]\n---\n".encode())], hub.alice)
    assert tag in hub.anon_api.model_info(repo).tags
    assert repo in {m.id for m in hub.anon_api.list_models(filter=tag)}
    hub.commit_ok(repo, [hub.op_delete("README.md")], hub.alice)
    assert tag not in hub.anon_api.model_info(repo).tags
    assert repo not in {m.id for m in hub.anon_api.list_models(filter=tag)}
    # Cards on other branches do not change the listing.
    hub.alice_api.create_branch(repo, branch="dev")
    hub.commit_ok(repo, [hub.op_file("README.md", f"---\ntags: [{tag}]\n---\n".encode())], hub.alice, revision="dev")
    assert repo not in {m.id for m in hub.anon_api.list_models(filter=tag)}
    assert tag in hub.anon_api.model_info(repo, revision="dev").tags


def _validate(hub, content, repo_type="model"):
    return hub.request("POST", "/api/validate-yaml", json={"content": content, "repoType": repo_type})


@pytest.mark.parametrize("content", [
    "---\nlicense: [unclosed\n---\n# x\n",
    "---\n: : :\n  - bad\n---\n",
    "---\nmodel-index: foo\n---\n",
    "---\n- a list\n- at top level\n---\n",
    "---\nlicense: {a: 1}\n---\n",
    "---\ntags: 5\n---\n",
])
def test_validate_yaml_invalid_is_400(hub, content):
    r = _validate(hub, content)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["errors"] and all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    assert isinstance(body["warnings"], list)
    assert r.headers.get("X-Error-Message")


def test_validate_yaml_no_metadata_warns(hub):
    for content in ("# Just a title\n\nNo metadata here.\n", "---\n---\n# empty\n", ""):
        r = _validate(hub, content)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["errors"] == [] and body["warnings"], body
        assert all(w["message"] for w in body["warnings"])


def test_validate_yaml_valid(hub):
    r = _validate(hub, "---\nlicense: mit\nlanguage: en\ntags: [a, b]\n---\n# ok\n", "dataset")
    assert r.status_code == 200
    assert r.json() == {"errors": [], "warnings": []}


def test_invalid_card_is_refused_by_client(hub):
    repo = hub.create_repo(hub.alice, prefix="badcard")
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        hub.alice_api.upload_file(path_or_fileobj=b"---\nmodel-index: foo\n---\n", path_in_repo="README.md",
                                  repo_id=repo)
    with pytest.warns(UserWarning, match="Warnings while validating metadata in README.md"):
        hub.alice_api.upload_file(path_or_fileobj=b"# no metadata\n", path_in_repo="README.md", repo_id=repo)
