"""Revisions (short shas, pull-request refs, unknown revisions), missing entries, download
counting and tree pagination."""
from urllib.parse import quote

import pytest

from huggingface_hub import CommitOperationAdd
from huggingface_hub.errors import RevisionNotFoundError

try:
    from huggingface_hub.errors import RemoteEntryNotFoundError as EntryMissing
except ImportError:  # older clients
    from huggingface_hub.errors import EntryNotFoundError as EntryMissing


@pytest.fixture(scope="module")
def repo(hub):
    repo = hub.create_repo(hub.alice, prefix="revs")
    first = hub.commit_ok(repo, [hub.op_file("config.json", b'{"v": 1}'), hub.op_file("other.txt", b"other")],
                          hub.alice, summary="first")
    second = hub.commit_ok(repo, [hub.op_file("config.json", b'{"v": 2}')], hub.alice, summary="second")
    return repo, first, second


def test_short_sha_resolves(hub, repo):
    repo, first, second = repo
    for sha, version in ((first, 1), (second, 2)):
        for n in (7, 12, 40):
            r = hub.request("GET", f"/api/models/{repo}/revision/{sha[:n]}")
            assert r.status_code == 200, (n, r.text)
            assert r.json()["sha"] == sha
            r = hub.request("GET", f"/{repo}/resolve/{sha[:n]}/config.json")
            assert r.status_code == 200 and r.content == b'{"v": %d}' % version
            assert r.headers["X-Repo-Commit"] == sha
        assert hub.request("GET", f"/{repo}/resolve/{sha[:7].upper()}/config.json").status_code == 200


def test_pull_request_refs(hub, repo):
    repo, _, second = repo
    info = hub.alice_api.create_commit(repo, operations=[CommitOperationAdd("pr.txt", b"from a PR")],
                                       commit_message="PR commit", create_pr=True)
    assert info.pr_url and info.pr_revision == f"refs/pr/{info.pr_num}"
    rev = quote(info.pr_revision, safe="")
    assert "%2F" in rev
    r = hub.request("GET", f"/api/models/{repo}/revision/{rev}")
    assert r.status_code == 200 and r.json()["sha"] == info.oid
    r = hub.request("GET", f"/{repo}/resolve/{rev}/pr.txt")
    assert r.status_code == 200 and r.content == b"from a PR"
    assert r.headers["X-Repo-Commit"] == info.oid
    r = hub.request("GET", f"/api/models/{repo}/tree/{rev}")
    assert "pr.txt" in {e["path"] for e in r.json()}
    assert hub.alice_api.list_repo_commits(repo, revision=info.pr_revision)[0].title == "PR commit"
    # main is untouched
    assert hub.head_sha(repo) == second
    assert "pr.txt" not in hub.alice_api.list_repo_files(repo)
    prs = {p.name: p.target_commit for p in hub.alice_api.list_repo_refs(repo, include_pull_requests=True).pull_requests}
    assert prs[info.pr_revision] == info.oid
    # Committing again to the PR ref is a normal commit on it.
    more = hub.alice_api.create_commit(repo, operations=[CommitOperationAdd("pr2.txt", b"2")],
                                       commit_message="more", revision=info.pr_revision)
    assert hub.request("GET", f"/api/models/{repo}/revision/{rev}").json()["sha"] == more.oid
    # A second PR gets the next number.
    again = hub.alice_api.create_commit(repo, operations=[CommitOperationAdd("pr3.txt", b"3")],
                                        commit_message="again", create_pr=True)
    assert again.pr_num == info.pr_num + 1


@pytest.mark.parametrize("rev", ["no-such-branch", "0" * 40, "deadbee", "refs%2Fpr%2F999", "refs%2Fheads%2Fnope", "v9.9"])
def test_unknown_revision(hub, repo, rev):
    repo = repo[0]
    for method, path in (("GET", f"/api/models/{repo}/revision/{rev}"),
                         ("GET", f"/api/models/{repo}/tree/{rev}"),
                         ("GET", f"/api/models/{repo}/commits/{rev}"),
                         ("POST", f"/api/models/{repo}/paths-info/{rev}"),
                         ("HEAD", f"/{repo}/resolve/{rev}/config.json"),
                         ("GET", f"/{repo}/resolve/{rev}/config.json")):
        r = hub.request(method, path, data={"paths": ["config.json"]} if method == "POST" else None)
        hub.assert_error(r, 404, code="RevisionNotFound")
    with pytest.raises(RevisionNotFoundError):
        hub.anon_api.model_info(repo, revision="no-such-branch")


def test_missing_entry_carries_commit(hub, repo, tmp_path):
    repo, _, second = repo
    for method in ("HEAD", "GET"):
        for path in ("nope.bin", "dir/nope.txt", "config.json/inner"):
            r = hub.request(method, f"/{repo}/resolve/main/{path}")
            hub.assert_error(r, 404, code="EntryNotFound")
            assert r.headers["X-Repo-Commit"] == second
    with pytest.raises(EntryMissing):
        from huggingface_hub import hf_hub_download

        hf_hub_download(repo, "nope.bin", cache_dir=str(tmp_path / "cache"))
    r = hub.request("GET", f"/api/models/{repo}/tree/main/no-such-dir")
    hub.assert_error(r, 404, code="EntryNotFound")
    # A folder is not a file.
    hub.commit_ok(repo, [hub.op_file("folder/file.txt", b"x")], hub.alice)
    hub.assert_error(hub.request("GET", f"/{repo}/resolve/main/folder"), 404, code="EntryNotFound")


def test_resolve_headers_regular_file(hub, repo):
    repo = repo[0]
    head = hub.head_sha(repo)
    content = b'{"v": 2}'
    for method in ("HEAD", "GET"):
        r = hub.request(method, f"/{repo}/resolve/main/config.json", headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200
        assert r.headers["X-Repo-Commit"] == head
        assert r.headers["ETag"] == f'"{hub.git_blob_sha1(content)}"'
        assert r.headers["Content-Length"] == str(len(content))
        assert "X-Linked-Etag" not in r.headers
        assert r.headers.get("X-Request-Id")


def _downloads(hub, repo):
    return hub.request("GET", f"/api/models/{repo}", hub.alice).json()["downloads"]


def test_downloads_count_config_json_only(hub):
    repo = hub.create_repo(hub.alice, prefix="downloads")
    hub.commit_ok(repo, [hub.op_file("config.json", b"{}"), hub.op_file("model.txt", b"m"),
                         hub.op_file("sub/config.json", b"{}")], hub.alice)
    assert _downloads(hub, repo) == 0
    # HEAD (the client's metadata check) never counts.
    assert hub.request("HEAD", f"/{repo}/resolve/main/config.json").status_code == 200
    assert _downloads(hub, repo) == 0
    assert hub.request("GET", f"/{repo}/resolve/main/config.json").status_code == 200
    assert _downloads(hub, repo) == 1
    # The same client again within the window does not count twice.
    assert hub.request("GET", f"/{repo}/resolve/main/config.json").status_code == 200
    assert _downloads(hub, repo) == 1
    hub.request("GET", f"/{repo}/resolve/main/config.json", hub.bob)
    assert _downloads(hub, repo) == 2
    hub.request("HEAD", f"/{repo}/resolve/main/config.json", hub.alice)
    assert _downloads(hub, repo) == 2
    for path in ("model.txt", ".gitattributes", "sub/config.json", "nope.json"):
        hub.request("GET", f"/{repo}/resolve/main/{path}")
    hub.request("GET", f"/api/models/{repo}")
    hub.request("GET", f"/api/models/{repo}/tree/main")
    assert _downloads(hub, repo) == 2
    assert hub.anon_api.model_info(repo).downloads == 2
    listed = hub.request("GET", "/api/models", params={"search": repo.split("/")[1]}).json()
    assert listed[0]["downloads"] == 2


def test_tree_pagination_over_1000_files(hub):
    repo = hub.create_repo(hub.alice, prefix="many-files")
    n = 1100
    ops = [hub.op_file(f"files/f{i:04d}.txt", b"%d" % i) for i in range(n)]
    hub.commit_ok(repo, ops, hub.alice, summary="many files")
    # Raw: the first page is capped and links to the next one.
    r = hub.request("GET", f"/api/models/{repo}/tree/main/files")
    assert r.status_code == 200
    assert len(r.json()) == 1000
    assert 'rel="next"' in r.headers.get("Link", "")
    paths = [e.path for e in hub.anon_api.list_repo_tree(repo, path_in_repo="files")]
    assert len(paths) == n and len(set(paths)) == n
    assert set(paths) == {f"files/f{i:04d}.txt" for i in range(n)}
    files = hub.anon_api.list_repo_files(repo)
    assert len(files) == n + 1
    # expand=true pages are smaller and still complete.
    expanded = list(hub.anon_api.list_repo_tree(repo, path_in_repo="files", expand=True))
    assert len(expanded) == n and all(e.last_commit.title == "many files" for e in expanded[:60])
    info = hub.anon_api.model_info(repo)
    assert len(info.siblings) == n + 1


def test_full_ref_names_resolve(hub, repo):
    repo, _, _ = repo
    head = hub.head_sha(repo)
    r = hub.request("GET", f"/api/models/{repo}/revision/{quote('refs/heads/main', safe='')}")
    assert r.status_code == 200 and r.json()["sha"] == head


def test_pull_request_from_older_parent_commit(hub):
    # huggingface_hub documents `parent_commit` with `create_pr=True` as "the pull request will be
    # created from parent_commit": it is the PR's base, not a compare-and-swap on the branch.
    repo = hub.create_repo(hub.alice, prefix="pr-parent")
    first = hub.commit_ok(repo, [hub.op_file("one.txt", b"1")], hub.alice, summary="one")
    second = hub.commit_ok(repo, [hub.op_file("two.txt", b"2")], hub.alice, summary="two")
    info = hub.alice_api.create_commit(repo, operations=[CommitOperationAdd("pr.txt", b"pr")],
                                       commit_message="PR on an older base", create_pr=True, parent_commit=first)
    assert info.pr_revision
    files = set(hub.alice_api.list_repo_files(repo, revision=info.pr_revision))
    assert files == {".gitattributes", "one.txt", "pr.txt"}, files
    history = [c.commit_id for c in hub.alice_api.list_repo_commits(repo, revision=info.pr_revision)]
    assert history[:2] == [info.oid, first]
    assert hub.head_sha(repo) == second


def test_commit_history_pagination(hub):
    repo = hub.create_repo(hub.alice, prefix="history")
    n = 105  # more than one page of 100
    for i in range(n):
        hub.commit_ok(repo, [hub.op_file("counter.txt", b"%d" % i)], hub.alice, summary=f"commit {i}")
    r = hub.request("GET", f"/api/models/{repo}/commits/main")
    assert len(r.json()) == 100 and 'rel="next"' in r.headers.get("Link", "")
    commits = hub.anon_api.list_repo_commits(repo)
    assert len(commits) == n + 1
    assert [c.title for c in commits[:n]] == [f"commit {i}" for i in reversed(range(n))]
    assert commits[-1].title == "initial commit"
    assert all(c.authors == ["alice"] for c in commits)
    assert len({c.commit_id for c in commits}) == n + 1
