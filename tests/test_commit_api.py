"""The NDJSON commit endpoint: invalid paths, malformed bodies, size limits, stale parents and
concurrent commits."""
import base64
import http.client
import json
import threading
from urllib.parse import urlparse

import pytest


@pytest.fixture(scope="module")
def repo(hub):
    repo = hub.create_repo(hub.alice, prefix="commits")
    hub.commit_ok(repo, [hub.op_file("README.md", b"# commits\n"), hub.op_file("dir/inner.txt", b"inner")], hub.alice)
    return repo


def _files(hub, repo, revision="main"):
    return set(hub.alice_api.list_repo_files(repo, revision=revision))


# --- paths --------------------------------------------------------------------------------------

BAD_PATHS = ["../x", "a/../../x", "..", "./a", "a/./b", ".git/config", ".git", "a/.git/hooks/post-update",
             "a\\..\\b", "..\\ddd", "a\x00b", "/", "",
             # Spellings of .git that git itself refuses in a tree (NTFS/HFS aliases, other case): a repo
             # holding them cannot be cloned (`git clone` fails with "invalid path").
             ".GIT/config", ".Git/hooks/post-update", "git~1/config", ".git./config", ".git /config", "a/GIT~1/x"]


@pytest.mark.parametrize("path", BAD_PATHS, ids=[repr(p) for p in BAD_PATHS])
def test_commit_refuses_invalid_paths(hub, repo, path):
    before = hub.head_sha(repo)
    r = hub.commit(repo, [hub.op_file(path, b"pwned")], hub.alice)
    hub.assert_error(r, 422)
    assert hub.head_sha(repo) == before, "a refused commit moved the branch"


@pytest.mark.parametrize("path", ["../x", "a/../../x", ".git/config", "a\\..\\b", "a\x00b"])
def test_lfs_and_delete_operations_refuse_invalid_paths(hub, repo, path):
    oid = hub.lfs_upload(repo, b"lfs content for path checks", hub.alice)
    hub.assert_error(hub.commit(repo, [hub.op_lfs(path, oid, 27)], hub.alice), 422)
    hub.assert_error(hub.commit(repo, [hub.op_delete(path)], hub.alice), 422)
    hub.assert_error(hub.commit(repo, [{"key": "deletedFolder", "value": {"path": path}}], hub.alice), 422)


def test_leading_slash_is_stripped(hub, repo):
    hub.commit_ok(repo, [hub.op_file("/abs", b"absolute")], hub.alice)
    files = _files(hub, repo)
    assert "abs" in files and "/abs" not in files
    assert hub.request("GET", f"/{repo}/resolve/main/abs").content == b"absolute"


def test_nothing_escaped_the_repository(hub, repo):
    # Whatever the refused commits above tried, the data folder holds no stray files.
    data = hub.data_dir
    for name in ("x", "pwned", "config"):
        assert not (data / name).exists() and not (data.parent / name).exists()


def _raw_get(hub, raw_path):
    """GET with the path sent exactly as written (no client-side normalisation)."""
    u = urlparse(hub.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest("GET", raw_path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("raw", [
    "..%2F..%2Fetc%2Fpasswd",
    "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "..%5C..%5Cetc%5Cpasswd",
    "../../etc/passwd",
    "dir/../../../../etc/passwd",
    ".git/config",
    ".git%2FHEAD",
    "%2Fetc%2Fpasswd",
])
def test_resolve_path_traversal_is_entry_not_found(hub, repo, raw):
    status, headers, body = _raw_get(hub, f"/{repo}/resolve/main/{raw}")
    assert status == 404, (status, headers, body[:200])
    assert headers.get("x-error-code") == "EntryNotFound", headers
    assert headers.get("x-error-message")
    assert len(headers.get("x-repo-commit", "")) == 40, headers
    assert b"root:" not in body and b"[core]" not in body and b"ref:" not in body
    assert json.loads(body)["error"]


def test_tree_path_traversal_is_refused(hub, repo):
    for raw in ("..%2F..", "..%2F..%2Fetc", ".git"):
        status, headers, body = _raw_get(hub, f"/api/models/{repo}/tree/main/{raw}")
        assert status in (404, 422), (raw, status, body[:200])
        assert b"passwd" not in body and b"HEAD" not in body


# --- malformed bodies ---------------------------------------------------------------------------

def _line(obj):
    return (json.dumps(obj) + "\n").encode()


HEADER = _line({"key": "header", "value": {"summary": "s", "description": ""}})
MALFORMED = {
    "not json": HEADER + b"this is not json\n",
    "truncated json": HEADER + b'{"key": "file", "value": {"path": "a.txt"\n',
    "empty body": b"",
    "only whitespace": b"\n\n  \n",
    "missing header": _line({"key": "file", "value": {"path": "a.txt", "content": "aGk=", "encoding": "base64"}}),
    "unknown key": HEADER + _line({"key": "copyFile", "value": {"path": "a.txt", "srcPath": "README.md"}}),
    "missing key": HEADER + _line({"value": {"path": "a.txt"}}),
    "line not an object": HEADER + b"[1, 2, 3]\n",
    "bad base64": HEADER + _line({"key": "file", "value": {"path": "a.txt", "content": "!!!not base64!!!", "encoding": "base64"}}),
    "unknown encoding": HEADER + _line({"key": "file", "value": {"path": "a.txt", "content": "hi", "encoding": "rot13"}}),
    "file without content": HEADER + _line({"key": "file", "value": {"path": "a.txt"}}),
    "file without path": HEADER + _line({"key": "file", "value": {"content": "aGk=", "encoding": "base64"}}),
    "path is a number": HEADER + _line({"key": "file", "value": {"path": 42, "content": "aGk=", "encoding": "base64"}}),
    "content is a list": HEADER + _line({"key": "file", "value": {"path": "a.txt", "content": ["aGk="], "encoding": "base64"}}),
    "header value not an object": _line({"key": "header", "value": "summary"}),
    "summary is a number": _line({"key": "header", "value": {"summary": 5}}),
    "lfs size is a string": HEADER + _line({"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": "a" * 64, "size": "big"}}),
    "lfs without oid": HEADER + _line({"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "size": 3}}),
    "lfs unknown algo": HEADER + _line({"key": "lfsFile", "value": {"path": "w.bin", "algo": "md5", "oid": "a" * 32, "size": 3}}),
    "deletedFile without path": HEADER + _line({"key": "deletedFile", "value": {}}),
    "not utf-8": HEADER + b"\xff\xfe\xfd\n",
}


@pytest.mark.parametrize("name", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_commit_body_is_400(hub, repo, name):
    before = hub.head_sha(repo)
    r = hub.commit_raw(repo, MALFORMED[name], hub.alice)
    hub.assert_error(r, 400)
    assert hub.head_sha(repo) == before


def test_lfs_oid_must_be_sha256(hub, repo):
    for oid in ("abc", "g" * 64, "a" * 63, "../" + "a" * 61):
        r = hub.commit(repo, [hub.op_lfs("w.bin", oid, 3)], hub.alice)
        assert 400 <= r.status_code < 500 and r.status_code != 404, (oid, r.status_code, r.text)
        assert r.headers.get("X-Error-Message"), r.headers


def test_malformed_json_bodies_are_400(hub, repo):
    cases = [
        ("POST", f"/api/models/{repo}/preupload/main", b"{not json"),
        ("POST", f"/api/models/{repo}/preupload/main", b'{"files": "nope"}'),
        ("POST", f"/api/models/{repo}/preupload/main", b'{"files": [{"path": "a", "sample": "***", "size": 1}]}'),
        ("POST", f"/api/models/{repo}/preupload/main", b'{"files": [{"path": "a", "sample": "", "size": -1}]}'),
        ("POST", "/api/repos/create", b"{not json"),
        ("POST", "/api/repos/create", b'{"name": 5}'),
        ("POST", "/api/validate-yaml", b"[]"),
        ("POST", f"/{repo}.git/info/lfs/objects/batch", b"{not json"),
        ("POST", f"/{repo}.git/info/lfs/objects/batch", b'{"operation": "upload", "objects": "x"}'),
        ("POST", f"/{repo}.git/info/lfs/objects/batch", b'{"operation": "steal", "objects": []}'),
        ("POST", f"/api/models/{repo}/branch/x", b"{not json"),
        ("POST", f"/api/models/{repo}/tag/main", b'{"notag": 1}'),
    ]
    for method, path, body in cases:
        r = hub.request(method, path, hub.alice, data=body, headers={"Content-Type": "application/json"})
        hub.assert_error(r, 400)


def test_bad_query_parameters_are_400(hub, repo):
    hub.assert_error(hub.request("GET", "/api/models", params={"limit": "lots"}), 400)
    hub.assert_error(hub.request("GET", "/api/models", params={"limit": "-1"}), 400)
    hub.assert_error(hub.request("GET", "/api/models", params={"sort": "nonsense"}), 400)
    hub.assert_error(hub.request("GET", f"/api/models/{repo}/commits/main", params={"cursor": "x"}), 400)


# --- limits -------------------------------------------------------------------------------------

HUGE = 17 * 1024 * 1024  # over the 16 MiB limit of JSON endpoints


def _huge_json(size):
    return b'{"files": [], "pad": "' + b"x" * size + b'"}'


@pytest.mark.parametrize("target", ["preupload", "validate-yaml", "repos/create", "lfs batch"])
def test_huge_json_body_is_413(hub, repo, target):
    path = {
        "preupload": f"/api/models/{repo}/preupload/main",
        "validate-yaml": "/api/validate-yaml",
        "repos/create": "/api/repos/create",
        "lfs batch": f"/{repo}.git/info/lfs/objects/batch",
    }[target]
    r = hub.request("POST", path, hub.alice, data=_huge_json(HUGE), headers={"Content-Type": "application/json"})
    hub.assert_error(r, 413)


def test_too_many_paths_in_paths_info(hub, repo):
    r = hub.request("POST", f"/api/models/{repo}/paths-info/main", hub.alice,
                    data={"paths": [f"p{i}" for i in range(10_001)]})
    hub.assert_error(r, 400)


# --- parents and concurrency ----------------------------------------------------------------------

def test_stale_parent_is_412(hub, repo):
    first = hub.commit_ok(repo, [hub.op_file("stale/1.txt", b"1")], hub.alice)
    second = hub.commit_ok(repo, [hub.op_file("stale/2.txt", b"2")], hub.alice, parent=first)
    r = hub.commit(repo, [hub.op_file("stale/3.txt", b"3")], hub.alice, parent=first)
    hub.assert_error(r, 412, message=hub.STALE_PARENT_MESSAGE)
    assert hub.head_sha(repo) == second
    assert "stale/3.txt" not in _files(hub, repo)
    # The current head is a fine parent; so is an upper-case spelling of it.
    hub.commit_ok(repo, [hub.op_file("stale/3.txt", b"3")], hub.alice, parent=second.upper())
    # huggingface_hub documents parent_commit shorthands ("7 first characters are also supported").
    hub.assert_error(hub.commit(repo, [hub.op_file("stale/4.txt", b"4")], hub.alice, parent=second[:7]), 412,
                     message=hub.STALE_PARENT_MESSAGE)


def test_short_parent_commit_is_accepted(hub, repo):
    head = hub.head_sha(repo)
    new = hub.commit_ok(repo, [hub.op_file("short-parent.txt", b"s")], hub.alice, parent=head[:7])
    assert hub.head_sha(repo) == new


def test_parent_that_is_not_a_commit_is_refused(hub, repo):
    for parent in ("0" * 40, "not-a-sha"):
        r = hub.commit(repo, [hub.op_file("p.txt", b"p")], hub.alice, parent=parent)
        assert r.status_code in (400, 412), (parent, r.status_code, r.text)
        assert r.headers.get("X-Error-Message")


def _in_threads(n, fn):
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_concurrent_commits_without_parent_all_land(hub):
    repo = hub.create_repo(hub.alice, prefix="concurrent")
    before = len(hub.alice_api.list_repo_commits(repo))
    n = 8
    results = _in_threads(n, lambda i: hub.commit(repo, [hub.op_file(f"c/{i}.txt", b"%d" % i)], hub.alice,
                                                   summary=f"concurrent {i}"))
    assert [r.status_code for r in results] == [200] * n, [(r.status_code, r.text) for r in results]
    files = _files(hub, repo)
    assert {f"c/{i}.txt" for i in range(n)} <= files, files
    commits = hub.alice_api.list_repo_commits(repo)
    assert len(commits) == before + n
    assert {c.title for c in commits[:n]} == {f"concurrent {i}" for i in range(n)}
    assert len({r.json()["commitOid"] for r in results}) == n
    assert hub.head_sha(repo) in {r.json()["commitOid"] for r in results}
    for i in range(n):
        assert hub.request("GET", f"/{repo}/resolve/main/c/{i}.txt").content == b"%d" % i


def test_concurrent_commits_on_one_parent_exactly_one_wins(hub):
    repo = hub.create_repo(hub.alice, prefix="race")
    parent = hub.head_sha(repo)
    n = 8
    results = _in_threads(n, lambda i: hub.commit(repo, [hub.op_file(f"r/{i}.txt", b"x")], hub.alice, parent=parent))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * (n - 1), [(r.status_code, r.text) for r in results]
    for r in results:
        if r.status_code == 412:
            hub.assert_error(r, 412, message=hub.STALE_PARENT_MESSAGE)
    winner = next(r for r in results if r.status_code == 200).json()["commitOid"]
    assert hub.head_sha(repo) == winner
    assert len([f for f in _files(hub, repo) if f.startswith("r/")]) == 1
    assert len(hub.alice_api.list_repo_commits(repo)) == 2


def test_commit_response_shape(hub, repo):
    r = hub.commit(repo, [hub.op_file("shape.txt", b"shape")], hub.alice)
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and len(body["commitOid"]) == 40
    assert body["commitUrl"] == f"{hub.endpoint}/{repo}/commit/{body['commitOid']}"
    assert body["pullRequestUrl"] is None


def test_operations_apply_in_order(hub, repo):
    ops = [hub.op_file("order.txt", b"one"), hub.op_file("order.txt", b"two"),
           hub.op_file("gone.txt", b"x"), hub.op_delete("gone.txt")]
    hub.commit_ok(repo, ops, hub.alice)
    assert hub.request("GET", f"/{repo}/resolve/main/order.txt").content == b"two"
    assert "gone.txt" not in _files(hub, repo)


def test_delete_missing_file_is_entry_not_found(hub, repo):
    r = hub.commit(repo, [hub.op_delete("never-existed.txt")], hub.alice)
    hub.assert_error(r, 404, code="EntryNotFound", message_contains="A file with this name doesn't exist")


def test_deleted_folder(hub, repo):
    hub.commit_ok(repo, [hub.op_file("folder/a.txt", b"a"), hub.op_file("folder/sub/b.txt", b"b")], hub.alice)
    hub.commit_ok(repo, [{"key": "deletedFolder", "value": {"path": "folder/"}}], hub.alice)
    assert not any(f.startswith("folder/") for f in _files(hub, repo))


def test_commit_to_unknown_branch_is_revision_not_found(hub, repo):
    r = hub.commit(repo, [hub.op_file("x.txt", b"x")], hub.alice, revision="no-such-branch")
    hub.assert_error(r, 404, code="RevisionNotFound")


def test_commit_base64_content_roundtrip(hub, repo):
    data = bytes(range(256)) * 4
    hub.commit_ok(repo, [{"key": "file", "value": {"path": "bytes.dat", "content": base64.b64encode(data).decode(),
                                                   "encoding": "base64"}}], hub.alice)
    assert hub.request("GET", f"/{repo}/resolve/main/bytes.dat").content == data
