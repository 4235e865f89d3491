"""Access control: private repositories never leak, tokens carry their scope, bad credentials
are refused with the Hub's 401."""
import json

import pytest

from huggingface_hub.errors import RepositoryNotFoundError

README = b"---\nlicense: mit\n---\n# secret model\n"


@pytest.fixture(scope="module")
def private_repo(hub):
    repo = hub.create_repo(hub.alice, private=True, prefix="private")
    hub.commit_ok(repo, [hub.op_file("README.md", README), hub.op_file("config.json", b'{"model_type": "bert"}')],
                  hub.alice)
    return repo


@pytest.fixture(scope="module")
def public_repo(hub):
    repo = hub.create_repo(hub.alice, prefix="public")
    hub.commit_ok(repo, [hub.op_file("README.md", b"# public\n")], hub.alice)
    return repo


def _lfs_batch_body(operation):
    return {"operation": operation, "transfers": ["basic"], "hash_algo": "sha256",
            "objects": [{"oid": "a" * 64, "size": 3}]}


def _commit_body():
    lines = [{"key": "header", "value": {"summary": "x", "description": ""}},
             {"key": "file", "value": {"path": "x.txt", "content": "eA==", "encoding": "base64"}}]
    return "".join(json.dumps(line) + "\n" for line in lines)


# (label, method, path template, request kwargs); {id} is the repo id.
READ_ENDPOINTS = [
    ("info", "GET", "/api/models/{id}", {}),
    ("info at revision", "GET", "/api/models/{id}/revision/main", {}),
    ("tree", "GET", "/api/models/{id}/tree/main", {}),
    ("tree recursive", "GET", "/api/models/{id}/tree/main?recursive=true&expand=true", {}),
    ("refs", "GET", "/api/models/{id}/refs", {}),
    ("commits", "GET", "/api/models/{id}/commits/main", {}),
    ("paths-info", "POST", "/api/models/{id}/paths-info/main", {"data": {"paths": ["README.md"], "expand": "false"}}),
    ("auth-check", "GET", "/api/models/{id}/auth-check", {}),
    ("resolve HEAD", "HEAD", "/{id}/resolve/main/README.md", {}),
    ("resolve GET", "GET", "/{id}/resolve/main/README.md", {}),
    ("resolve GET config", "GET", "/{id}/resolve/main/config.json", {}),
    ("resolve GET missing file", "GET", "/{id}/resolve/main/nope.bin", {}),
    ("resolve path traversal", "GET", "/{id}/resolve/main/..%2F..%2Fetc%2Fpasswd", {}),
    ("info at unknown revision", "GET", "/api/models/{id}/revision/no-such-rev", {}),
    ("resolve unknown revision", "GET", "/{id}/resolve/no-such-rev/README.md", {}),
    ("tree of a folder", "GET", "/api/models/{id}/tree/main/sub%2Fdir", {}),
    ("commits at unknown revision", "GET", "/api/models/{id}/commits/no-such-rev", {}),
    ("lfs batch download", "POST", "/{id}.git/info/lfs/objects/batch", {"json": _lfs_batch_body("download")}),
    ("lfs verify", "POST", "/{id}.git/info/lfs/objects/verify", {"json": {"oid": "a" * 64, "size": 3}}),
]
WRITE_ENDPOINTS = [
    ("lfs batch upload", "POST", "/{id}.git/info/lfs/objects/batch", {"json": _lfs_batch_body("upload")}),
    ("commit", "POST", "/api/models/{id}/commit/main",
     {"data": _commit_body(), "headers": {"Content-Type": "application/x-ndjson"}}),
    ("preupload", "POST", "/api/models/{id}/preupload/main",
     {"json": {"files": [{"path": "x.txt", "sample": "eA==", "size": 1}]}}),
    ("create branch", "POST", "/api/models/{id}/branch/leak", {"json": {}}),
    ("create tag", "POST", "/api/models/{id}/tag/main", {"json": {"tag": "leak"}}),
    ("settings", "PUT", "/api/models/{id}/settings", {"json": {"private": False}}),
]
ALL_ENDPOINTS = READ_ENDPOINTS + WRITE_ENDPOINTS


def _send(hub, token, method, template, repo, kw):
    kw = dict(kw)
    headers = kw.pop("headers", None)
    return hub.request(method, template.format(id=repo), token, headers=headers, **kw)


def _shape(r):
    """What must not tell a private repo from a missing one."""
    return (r.status_code, r.headers.get("X-Error-Code"), r.headers.get("X-Error-Message"),
            r.headers.get("Content-Type"), r.headers.get("WWW-Authenticate"), r.content)


@pytest.mark.parametrize("caller", ["anonymous", "bob"])
@pytest.mark.parametrize("label,method,template,kw", ALL_ENDPOINTS, ids=[e[0] for e in ALL_ENDPOINTS])
def test_private_repo_is_not_found_for_others(hub, private_repo, caller, label, method, template, kw):
    token = hub.bob if caller == "bob" else None
    r = _send(hub, token, method, template, private_repo, kw)
    hub.assert_error(r, 404, code="RepoNotFound")
    assert b"secret" not in r.content
    missing = f"alice/{hub.unique('missing')}"
    m = _send(hub, token, method, template, missing, kw)
    assert _shape(r) == _shape(m), f"{label}: private {_shape(r)} vs missing {_shape(m)}"


@pytest.mark.parametrize("caller", ["anonymous", "bob"])
def test_private_repo_other_spellings_are_not_found(hub, private_repo, caller):
    token = hub.bob if caller == "bob" else None
    ns, name = private_repo.split("/")
    for repo in (f"{ns.upper()}/{name.upper()}", f"{ns}/{name.upper()}"):
        for path in (f"/api/models/{repo}", f"/{repo}/resolve/main/README.md", f"/{repo}.git/info/lfs/objects/batch"):
            method = "POST" if path.endswith("batch") else "GET"
            r = hub.request(method, path, token, json=_lfs_batch_body("download") if method == "POST" else None)
            hub.assert_error(r, 404, code="RepoNotFound")
    for method in ("HEAD", "GET"):
        r = hub.request(method, f"/api/models/{private_repo}", token)
        m = hub.request(method, f"/api/models/alice/{hub.unique('missing')}", token)
        assert _shape(r) == _shape(m)


def test_moved_private_repo_old_name_is_not_found(hub):
    old = hub.create_repo(hub.alice, private=True, prefix="private-old")
    new = f"alice/{hub.unique('private-new')}"
    hub.alice_api.move_repo(from_id=old, to_id=new)
    for token in (None, hub.bob):
        for repo in (old, new):
            hub.assert_error(hub.request("GET", f"/api/models/{repo}", token), 404, code="RepoNotFound")
            hub.assert_error(hub.request("GET", f"/{repo}/resolve/main/.gitattributes", token), 404,
                             code="RepoNotFound")
    assert hub.request("GET", f"/api/models/{old}", hub.alice).json()["id"] == new


OWNER_OK = [e for e in READ_ENDPOINTS if e[0] in {
    "info", "info at revision", "tree", "tree recursive", "refs", "commits", "paths-info", "auth-check",
    "resolve HEAD", "resolve GET", "resolve GET config", "lfs batch download"}]


@pytest.mark.parametrize("label,method,template,kw", OWNER_OK, ids=[e[0] for e in OWNER_OK])
def test_private_repo_is_visible_to_its_owner(hub, private_repo, label, method, template, kw):
    r = _send(hub, hub.alice, method, template, private_repo, kw)
    assert r.status_code == 200, (r.status_code, r.text)


def test_private_repo_owner_can_use_write_endpoints(hub, private_repo):
    r = hub.request("POST", f"/api/models/{private_repo}/preupload/main", hub.alice,
                    json={"files": [{"path": "x.txt", "sample": "eA==", "size": 1}]})
    assert r.status_code == 200, r.text
    assert r.json()["files"][0]["uploadMode"] == "regular"
    r = hub.lfs_batch(private_repo, [("b" * 64, 3)], hub.alice, operation="upload")
    assert r.status_code == 200, r.text
    assert "upload" in r.json()["objects"][0]["actions"]
    got = hub.request("GET", f"/{private_repo}/resolve/main/README.md", hub.alice)
    assert got.status_code == 200 and got.content == README


def test_private_repo_not_listed_for_others(hub, private_repo, public_repo):
    name = private_repo.split("/")[1]
    for token in (None, hub.bob):
        for params in ({"author": "alice"}, {"search": name}, {"author": "alice", "search": name},
                       {"author": "alice", "full": "true"}, {"filter": "license:mit", "author": "alice"}):
            r = hub.request("GET", "/api/models", token, params=params)
            assert r.status_code == 200, r.text
            ids = {m["id"] for m in r.json()}
            assert private_repo not in ids, (token, params)
        ids = {m["id"] for m in hub.request("GET", "/api/models", token, params={"author": "alice"}).json()}
        assert public_repo in ids
    for api in (hub.anon_api, hub.bob_api):
        assert private_repo not in {m.id for m in api.list_models(author="alice")}
        assert private_repo not in {m.id for m in api.list_models(search=name)}
    assert private_repo in {m.id for m in hub.alice_api.list_models(search=name)}
    assert private_repo in {m.id for m in hub.alice_read_api.list_models(author="alice", search=name)}


def test_private_repo_client_errors(hub, private_repo):
    for api in (hub.anon_api, hub.bob_api):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(private_repo)
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_files(private_repo)
    assert hub.alice_api.model_info(private_repo).private is True


def test_private_dataset_is_not_found(hub):
    repo = hub.create_repo(hub.alice, private=True, repo_type="dataset", prefix="private-ds")
    hub.commit_ok(repo, [hub.op_file("data.csv", b"a,b\n1,2\n")], hub.alice, repo_type="dataset")
    for token in (None, hub.bob):
        hub.assert_error(hub.request("GET", f"/api/datasets/{repo}", token), 404, code="RepoNotFound")
        hub.assert_error(hub.request("GET", f"/datasets/{repo}/resolve/main/data.csv", token), 404, code="RepoNotFound")
    ok = hub.request("GET", f"/datasets/{repo}/resolve/main/data.csv", hub.alice)
    assert ok.status_code == 200 and ok.content == b"a,b\n1,2\n"


# --- tokens -----------------------------------------------------------------------------------

def test_read_token_reads_private_repos(hub, private_repo):
    r = hub.request("GET", f"/api/models/{private_repo}", hub.alice_read)
    assert r.status_code == 200 and r.json()["private"] is True
    r = hub.request("GET", f"/{private_repo}/resolve/main/README.md", hub.alice_read)
    assert r.status_code == 200 and r.content == README
    assert hub.alice_read_api.model_info(private_repo).id == private_repo
    me = hub.request("GET", "/api/whoami-v2", hub.alice_read).json()
    assert me["name"] == "alice" and me["auth"]["accessToken"]["role"] == "read"


def test_read_token_cannot_write(hub, private_repo, public_repo):
    t = hub.alice_read
    hub.assert_error(hub.request("POST", "/api/repos/create", t, json={"name": hub.unique("ro")}), 403)
    for repo in (private_repo, public_repo):
        hub.assert_error(hub.commit(repo, [hub.op_file("ro.txt", b"x")], t), 403)
        hub.assert_error(hub.request("POST", f"/api/models/{repo}/preupload/main", t,
                                     json={"files": [{"path": "x.txt", "sample": "eA==", "size": 1}]}), 403)
        hub.assert_error(hub.lfs_batch(repo, [("c" * 64, 3)], t), 403)
        hub.assert_error(hub.request("POST", f"/api/models/{repo}/branch/ro", t, json={}), 403)
        hub.assert_error(hub.request("POST", f"/api/models/{repo}/tag/main", t, json={"tag": "ro"}), 403)
        hub.assert_error(hub.request("PUT", f"/api/models/{repo}/settings", t, json={"private": True}), 403)
        hub.assert_error(hub.request("DELETE", "/api/repos/delete", t, json={"name": repo}), 403)
        assert "ro.txt" not in hub.alice_api.list_repo_files(repo)
    assert hub.alice_api.repo_exists(public_repo)


@pytest.mark.parametrize("path", ["/api/whoami-v2", "/api/models", "/api/models/{public}", "/{public}/resolve/main/README.md"])
def test_bad_token_is_401(hub, public_repo, path):
    for auth in ("Bearer hf_" + "x" * 34, "Bearer not-a-token", "Basic " + "YWxpY2U6d3JvbmctcGFzc3dvcmQ=",
                 "Basic !!!", "Weird scheme"):
        r = hub.session.get(hub.url(path.format(public=public_repo)), headers={"Authorization": auth}, timeout=30)
        hub.assert_error(r, 401, message=hub.BAD_CREDENTIALS_MESSAGE)


def test_revoked_token_is_401(hub):
    token = hub.cli("token", "add", "bob", "--role", "write").strip().splitlines()[-1]
    assert hub.request("GET", "/api/whoami-v2", token).status_code == 200
    hub.cli("token", "revoke", token)
    hub.assert_error(hub.request("GET", "/api/whoami-v2", token), 401, message=hub.BAD_CREDENTIALS_MESSAGE)


def test_password_basic_auth(hub, private_repo):
    r = hub.session.get(hub.url(f"/api/models/{private_repo}"), auth=("alice", "alice-pass-123"), timeout=30)
    assert r.status_code == 200, r.text
    r = hub.session.get(hub.url(f"/api/models/{private_repo}"), auth=("alice", "wrong"), timeout=30)
    hub.assert_error(r, 401, message=hub.BAD_CREDENTIALS_MESSAGE)
    r = hub.session.get(hub.url(f"/api/models/{private_repo}"), auth=("bob", "bob-pass-123"), timeout=30)
    hub.assert_error(r, 404, code="RepoNotFound")


def test_anonymous_cannot_write_public_repo(hub, public_repo):
    hub.assert_error(hub.commit(public_repo, [hub.op_file("anon.txt", b"x")], None), 401)
    hub.assert_error(hub.lfs_batch(public_repo, [("d" * 64, 3)], None), 401)
    hub.assert_error(hub.request("POST", "/api/repos/create", None, json={"name": hub.unique("anon")}), 401)
    assert hub.request("GET", f"/{public_repo}/resolve/main/README.md").status_code == 200


def test_other_user_cannot_write_public_repo(hub, public_repo):
    b = hub.bob
    hub.assert_error(hub.commit(public_repo, [hub.op_file("evil.txt", b"x")], b), 403)
    hub.assert_error(hub.lfs_batch(public_repo, [("e" * 64, 3)], b), 403)
    hub.assert_error(hub.request("POST", f"/api/models/{public_repo}/branch/evil", b, json={}), 403)
    hub.assert_error(hub.request("DELETE", f"/api/models/{public_repo}/branch/main", b), 403)
    hub.assert_error(hub.request("PUT", f"/api/models/{public_repo}/settings", b, json={"private": True}), 403)
    hub.assert_error(hub.request("DELETE", "/api/repos/delete", b, json={"name": public_repo}), 403)
    hub.assert_error(hub.request("POST", "/api/repos/move", b,
                                 json={"fromRepo": public_repo, "toRepo": f"bob/{hub.unique('stolen')}"}), 403)
    assert "evil.txt" not in hub.anon_api.list_repo_files(public_repo)
    # Download access is unaffected.
    r = hub.lfs_batch(public_repo, [("e" * 64, 3)], b, operation="download")
    assert r.status_code == 200


def test_org_read_member(hub):
    repo = hub.create_repo(hub.alice, private=True, organization="beta", prefix="beta-private")
    hub.commit_ok(repo, [hub.op_file("notes.txt", b"for members")], hub.alice)
    # bob reads it as a read member of beta...
    r = hub.request("GET", f"/api/models/{repo}", hub.bob)
    assert r.status_code == 200, r.text
    assert hub.request("GET", f"/{repo}/resolve/main/notes.txt", hub.bob).content == b"for members"
    assert repo in {m["id"] for m in hub.request("GET", "/api/models", hub.bob, params={"author": "beta"}).json()}
    # ...but may not write to it nor create repos in beta.
    hub.assert_error(hub.commit(repo, [hub.op_file("bob.txt", b"x")], hub.bob), 403)
    hub.assert_error(hub.request("POST", "/api/repos/create", hub.bob,
                                 json={"name": hub.unique("bob-in-beta"), "organization": "beta"}), 403)
    # acme, where bob is no member, stays closed.
    hub.assert_error(hub.request("POST", "/api/repos/create", hub.bob,
                                 json={"name": hub.unique("bob-in-acme"), "organization": "acme"}), 403)
    acme_private = hub.create_repo(hub.alice, private=True, organization="acme", prefix="acme-private")
    hub.assert_error(hub.request("GET", f"/api/models/{acme_private}", hub.bob), 404, code="RepoNotFound")
    # Anonymous callers see neither.
    hub.assert_error(hub.request("GET", f"/api/models/{repo}"), 404, code="RepoNotFound")
    me = hub.request("GET", "/api/whoami-v2", hub.bob).json()
    roles = {o["name"]: o["roleInOrg"] for o in me["orgs"]}
    assert roles == {"beta": "read"}, roles


def test_whoami(hub):
    me = hub.alice_api.whoami()
    assert me["name"] == "alice"
    assert {o["name"] for o in me["orgs"]} == {"acme", "beta"}
    r = hub.request("GET", "/api/whoami-v2")
    assert r.status_code == 401, r.text
    assert r.headers.get("X-Error-Message")
