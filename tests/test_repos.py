"""Repository lifecycle: names, duplicates, branches and tags, moves, listing pagination."""
import pytest

from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

INVALID_NAMES = ["a--b", "-a", "a-", "x.git", "a" * 97, "a/b/c", "é", "a..b", ".a", "a b", "a%b", "", "a@b"]


@pytest.mark.parametrize("name", INVALID_NAMES, ids=[repr(n[:20]) for n in INVALID_NAMES])
def test_invalid_repo_names_are_400(hub, name):
    r = hub.request("POST", "/api/repos/create", hub.alice, json={"name": name, "organization": None})
    hub.assert_error(r, 400)
    r = hub.request("POST", "/api/repos/create", hub.alice, json={"name": name, "organization": "alice"})
    hub.assert_error(r, 400)


def test_longest_valid_name(hub):
    name = "n" * 86 + hub.unique("")[1:]
    assert len(name) == 96
    assert hub.create_repo(hub.alice, name=name) == f"alice/{name}"


def test_invalid_namespace_is_refused(hub):
    for org in ("no-such-org", "bob"):
        r = hub.request("POST", "/api/repos/create", hub.alice, json={"name": hub.unique(), "organization": org})
        assert r.status_code in (403, 404), (org, r.status_code, r.text)
        assert r.headers.get("X-Error-Message")


def test_duplicate_is_409(hub):
    name = hub.unique("dup")
    repo = hub.create_repo(hub.alice, name=name)
    r = hub.request("POST", "/api/repos/create", hub.alice, json={"name": name})
    hub.assert_error(r, 409)
    assert r.json()["url"] == f"{hub.endpoint}/{repo}"
    # Names are unique without regard to case; the case given at creation is kept.
    r = hub.request("POST", "/api/repos/create", hub.alice, json={"name": name.upper()})
    hub.assert_error(r, 409)
    assert hub.request("GET", f"/api/models/alice/{name.upper()}").json()["id"] == repo
    # exist_ok through the client.
    assert hub.alice_api.create_repo(repo, exist_ok=True).repo_id == repo
    # The same name is free for another repo type.
    r = hub.request("POST", "/api/repos/create", hub.alice, json={"name": name, "type": "dataset"})
    assert r.status_code == 200, r.text


def test_namespace_keeps_the_account_spelling(hub):
    # Namespaces are looked up without regard to case, but a repo id carries the account's own
    # spelling: "alice/x", never "ALICE/x".
    for org, canonical in (("ALICE", "alice"), ("Acme", "acme")):
        name = hub.unique("ns-case")
        r = hub.request("POST", "/api/repos/create", hub.alice, json={"name": name, "organization": org})
        assert r.status_code == 200, r.text
        assert r.json()["name"] == f"{canonical}/{name}"
        assert r.json()["url"] == f"{hub.endpoint}/{canonical}/{name}"
        assert hub.request("GET", f"/api/models/{org}/{name}").json()["id"] == f"{canonical}/{name}"
        listed = {m["id"] for m in hub.request("GET", "/api/models", params={"search": name}).json()}
        assert listed == {f"{canonical}/{name}"}


def test_concurrent_creates_of_one_name(hub):
    import threading

    name = hub.unique("racy")
    results = []
    barrier = threading.Barrier(8)

    def create():
        barrier.wait()
        results.append(hub.request("POST", "/api/repos/create", hub.alice, json={"name": name}))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in results) == [200] + [409] * 7, [(r.status_code, r.text) for r in results]
    assert hub.alice_api.list_repo_files(f"alice/{name}") == [".gitattributes"]


def test_new_repo_has_initial_commit_with_gitattributes(hub):
    repo = hub.create_repo(hub.alice, prefix="fresh")
    assert hub.alice_api.list_repo_files(repo) == [".gitattributes"]
    commits = hub.alice_api.list_repo_commits(repo)
    assert len(commits) == 1 and commits[0].authors == ["alice"]
    r = hub.request("GET", f"/{repo}/resolve/main/.gitattributes")
    assert b"*.safetensors filter=lfs diff=lfs merge=lfs -text" in r.content


# --- branches and tags --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def repo(hub):
    repo = hub.create_repo(hub.alice, prefix="refs")
    hub.commit_ok(repo, [hub.op_file("a.txt", b"a")], hub.alice)
    return repo


def test_delete_main_is_403(hub, repo):
    r = hub.request("DELETE", f"/api/models/{repo}/branch/main", hub.alice)
    hub.assert_error(r, 403, message_contains="refs/heads/main")
    assert "main" in {b.name for b in hub.alice_api.list_repo_refs(repo).branches}


def test_create_existing_branch_is_409(hub, repo):
    hub.alice_api.create_branch(repo, branch="dev")
    for branch in ("dev", "main"):
        r = hub.request("POST", f"/api/models/{repo}/branch/{branch}", hub.alice, json={})
        hub.assert_error(r, 409, message_contains=f"refs/heads/{branch}")
    hub.alice_api.create_branch(repo, branch="dev", exist_ok=True)


def test_branch_lifecycle(hub, repo):
    head = hub.head_sha(repo)
    hub.alice_api.create_branch(repo, branch="feature/x")
    hub.commit_ok(repo, [hub.op_file("f.txt", b"f")], hub.alice, revision="feature/x")
    assert "f.txt" in hub.alice_api.list_repo_files(repo, revision="feature/x")
    assert "f.txt" not in hub.alice_api.list_repo_files(repo)
    assert hub.head_sha(repo) == head
    hub.alice_api.delete_branch(repo, branch="feature/x")
    with pytest.raises(RevisionNotFoundError):
        hub.alice_api.list_repo_files(repo, revision="feature/x")
    r = hub.request("DELETE", f"/api/models/{repo}/branch/feature%2Fx", hub.alice)
    hub.assert_error(r, 404, code="RevisionNotFound")
    # starting point
    hub.alice_api.create_branch(repo, branch="from-first", revision=hub.alice_api.list_repo_commits(repo)[-1].commit_id)
    assert hub.alice_api.list_repo_files(repo, revision="from-first") == [".gitattributes"]


@pytest.mark.parametrize("name", ["refs/pr/5", "a..b", "a b", "-x", "x.lock", "a~1", "a^", "a:b", "@"])
def test_invalid_branch_names_are_400(hub, repo, name):
    from urllib.parse import quote

    r = hub.request("POST", f"/api/models/{repo}/branch/{quote(name, safe='')}", hub.alice, json={})
    hub.assert_error(r, 400)


def test_branch_from_unknown_revision(hub, repo):
    r = hub.request("POST", f"/api/models/{repo}/branch/nowhere", hub.alice, json={"startingPoint": "nope"})
    hub.assert_error(r, 404, code="RevisionNotFound")


def test_tags(hub, repo):
    head = hub.head_sha(repo)
    hub.alice_api.create_tag(repo, tag="v1.0", revision=head)
    tags = {t.name: t.target_commit for t in hub.alice_api.list_repo_refs(repo).tags}
    assert tags["v1.0"] == head
    r = hub.request("POST", f"/api/models/{repo}/tag/main", hub.alice, json={"tag": "v1.0"})
    hub.assert_error(r, 409)
    hub.alice_api.create_tag(repo, tag="v1.0", exist_ok=True)
    assert hub.alice_api.model_info(repo, revision="v1.0").sha == head
    hub.commit_ok(repo, [hub.op_file("after-tag.txt", b"x")], hub.alice)
    assert "after-tag.txt" not in hub.alice_api.list_repo_files(repo, revision="v1.0")
    # A branch may share a tag's name.
    hub.alice_api.create_branch(repo, branch="v1.0")
    hub.alice_api.delete_branch(repo, branch="v1.0")
    hub.alice_api.delete_tag(repo, tag="v1.0")
    assert "v1.0" not in {t.name for t in hub.alice_api.list_repo_refs(repo).tags}
    r = hub.request("DELETE", f"/api/models/{repo}/tag/v1.0", hub.alice)
    hub.assert_error(r, 404, code="RevisionNotFound")
    r = hub.request("POST", f"/api/models/{repo}/tag/nope", hub.alice, json={"tag": "v2"})
    hub.assert_error(r, 404, code="RevisionNotFound")
    r = hub.request("POST", f"/api/models/{repo}/tag/main", hub.alice, json={"tag": "invalid tag"})
    hub.assert_error(r, 400)


def test_refs_shape(hub, repo):
    r = hub.request("GET", f"/api/models/{repo}/refs", params={"include_prs": "1"})
    body = r.json()
    assert set(body) >= {"branches", "tags", "converts", "pullRequests"}
    main = [b for b in body["branches"] if b["name"] == "main"][0]
    assert main["ref"] == "refs/heads/main" and len(main["targetCommit"]) == 40


# --- move ---------------------------------------------------------------------------------------

def test_move_to_existing_name_is_409(hub):
    a = hub.create_repo(hub.alice, prefix="move-a")
    b = hub.create_repo(hub.alice, prefix="move-b")
    r = hub.request("POST", "/api/repos/move", hub.alice, json={"fromRepo": a, "toRepo": b, "type": "model"})
    hub.assert_error(r, 409)
    assert "already exists" in r.headers["X-Error-Message"]
    with pytest.raises(HfHubHTTPError, match=r"A model repository called .* already exists"):
        hub.alice_api.move_repo(from_id=a, to_id=b)
    assert hub.request("GET", f"/api/models/{a}").json()["id"] == a


def test_move_keeps_old_name_working(hub):
    old = hub.create_repo(hub.alice, prefix="old-name")
    hub.commit_ok(old, [hub.op_file("config.json", b'{"a": 1}')], hub.alice)
    new = f"alice/{hub.unique('new-name')}"
    hub.alice_api.move_repo(from_id=old, to_id=new)
    assert hub.request("GET", f"/api/models/{new}").json()["id"] == new
    # The old name still answers (directly or through a redirect) for API and downloads.
    r = hub.session.get(hub.url(f"/api/models/{old}"), timeout=30)
    assert r.status_code == 200 and r.json()["id"] == new
    r = hub.session.get(hub.url(f"/{old}/resolve/main/config.json"), timeout=30)
    assert r.status_code == 200 and r.content == b'{"a": 1}'
    assert hub.anon_api.model_info(old).id == new
    # Writing through the old name lands in the moved repo.
    hub.commit_ok(old, [hub.op_file("later.txt", b"later")], hub.alice)
    assert "later.txt" in hub.alice_api.list_repo_files(new)
    # Only the new name is listed.
    ids = {m.id for m in hub.anon_api.list_models(author="alice", search=new.split("/")[1])}
    assert ids == {new}


def test_move_into_org_and_invalid_target(hub):
    repo = hub.create_repo(hub.alice, prefix="to-org")
    target = f"acme/{hub.unique('moved')}"
    hub.alice_api.move_repo(from_id=repo, to_id=target)
    assert hub.request("GET", f"/api/models/{target}").status_code == 200
    r = hub.request("POST", "/api/repos/move", hub.alice, json={"fromRepo": target, "toRepo": "acme/bad--name"})
    hub.assert_error(r, 400)


def test_delete_repo(hub):
    repo = hub.create_repo(hub.alice, prefix="doomed")
    hub.alice_api.delete_repo(repo)
    hub.assert_error(hub.request("GET", f"/api/models/{repo}"), 404, code="RepoNotFound")
    hub.assert_error(hub.request("DELETE", "/api/repos/delete", hub.alice, json={"name": repo}), 404, code="RepoNotFound")
    # The name is free again.
    assert hub.create_repo(hub.alice, name=repo.split("/")[1]) == repo
    assert hub.alice_api.list_repo_files(repo) == [".gitattributes"]


# --- listing ------------------------------------------------------------------------------------

def test_listing_limit_and_link(hub):
    for _ in range(3):
        hub.create_repo(hub.alice, prefix="listed")
    r = hub.request("GET", "/api/models", params={"author": "alice", "limit": "2"})
    assert r.status_code == 200
    assert len(r.json()) == 2
    r = hub.request("GET", "/api/models", params={"author": "alice"})
    assert r.status_code == 200
    assert len(r.json()) >= 3
    assert "Link" not in r.headers, r.headers.get("Link")
    assert all(m["id"].lower().startswith("alice/") for m in r.json())
    assert len(list(hub.anon_api.list_models(author="alice", limit=2))) == 2


def test_listing_link_pagination(hub):
    # A fresh user keeps the count exact: more repos than one page of 1000 is too slow to make,
    # so follow the cursor the Link header uses by hand instead.
    r = hub.request("GET", "/api/models", params={"author": "alice", "cursor": "1"})
    full = hub.request("GET", "/api/models", params={"author": "alice"}).json()
    assert [m["id"] for m in r.json()] == [m["id"] for m in full[1:]]


def test_listing_shapes(hub, repo):
    r = hub.request("GET", "/api/models", params={"search": repo.split("/")[1], "full": "true"})
    [m] = r.json()
    assert m["id"] == repo and {s["rfilename"] for s in m["siblings"]} >= {".gitattributes", "a.txt"}
    r = hub.request("GET", "/api/models", params=[("search", repo.split("/")[1]), ("expand", "sha"),
                                                  ("expand", "private")])
    [m] = r.json()
    assert set(m) - {"_id", "id", "modelId"} == {"sha", "private"}
    assert m["sha"] == hub.head_sha(repo)
    hub.assert_error(hub.request("GET", "/api/nothings"), 404)
