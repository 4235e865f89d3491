"""Attacks on a running wharf, one per finding of the "safe to expose" review, each written the
way an attacker would try it: reading another repository's objects by hash, anonymous memory
exhaustion, tree bombs, gated content through git and LFS, guessing passwords, credentials
that outlive the access they were minted from, clickjacking, inflated download counts, and
fetching force-pushed-away commits. Every test asserts the refusal and that nothing leaked.
"""
import base64
import gzip
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import free_port, start_server, stop_server, _cli, _token
from test_git import Git, LFS_POINTER, assert_refused

MIB = 1024 * 1024


@pytest.fixture
def git(hub, tmp_path):
    return Git(hub, tmp_path)


def private_lfs_object(hub, size=4096):
    """A private repo of alice's holding one LFS file; returns (repo, oid, size, data)."""
    repo = hub.create_repo(hub.alice, private=True, prefix="secret")
    data = os.urandom(size)
    oid = hub.lfs_upload(repo, data, hub.alice)
    hub.commit_ok(repo, [hub.op_lfs("weights.bin", oid, size)], hub.alice)
    return repo, oid, size, data


# --- 1. content only from objects linked to the repository being read ----------------------

def test_pointer_text_naming_another_repos_object_is_refused_in_commits(hub):
    _, oid, size, _ = private_lfs_object(hub)
    mine = hub.create_repo(hub.bob, prefix="thief")
    pointer = LFS_POINTER.format(oid=oid, size=size).encode()
    r = hub.commit(mine, [hub.op_file("stolen.bin", pointer)], hub.bob)
    hub.assert_error(r, 400, message_contains="was not uploaded to this repository")
    # Nothing to read back either: the file does not exist.
    assert hub.request("GET", f"/{mine}/resolve/main/stolen.bin").status_code == 404


def test_pointer_text_naming_another_repos_object_is_refused_in_pushes(hub, git):
    _, oid, size, _ = private_lfs_object(hub)
    mine = hub.create_repo(hub.bob, prefix="thief-git")
    clone = git.clone(mine, "thief", hub.bob)
    (clone / "stolen.bin").write_text(LFS_POINTER.format(oid=oid, size=size))
    git.run("add", "stolen.bin", cwd=clone)
    git.run("commit", "-qm", "pointer as a plain file", cwd=clone)
    # --no-verify: git-lfs's own pre-push check would stop the attacker before the server.
    assert_refused(git.push(clone, "--no-verify", "origin", "main"), "was not uploaded to this repository")


def test_a_pointer_that_matches_no_linked_object_reads_as_the_text_it_is(hub):
    """A pointer-shaped file whose object this repo owns at another size is no LFS file."""
    repo = hub.create_repo(hub.alice, prefix="mismatch")
    data = os.urandom(3000)
    oid = hub.lfs_upload(repo, data, hub.alice)
    wrong = LFS_POINTER.format(oid=oid, size=len(data) + 1).encode()
    r = hub.commit(repo, [hub.op_file("odd.bin", wrong)], hub.alice)
    hub.assert_error(r, 400, message_contains="was not uploaded to this repository")


# --- 2. bodies: authorize first, bound what is read ------------------------------------------

def raw_request(port, head: bytes, body: bytes = b"", wait=5.0):
    """Sends raw bytes and returns the status line of the answer, or None on timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(head + body)
        try:
            data = s.recv(4096)
        except socket.timeout:
            return None
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def test_anonymous_commit_with_a_huge_body_is_refused_before_it_is_read(hub):
    repo = hub.create_repo(hub.alice, prefix="huge-body")
    port = int(hub.endpoint.rsplit(":", 1)[1])
    head = (f"POST /api/models/{repo}/commit/main HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {1 << 30}\r\n\r\n").encode()
    # Only a few bytes of the announced GiB are sent: the answer must come anyway.
    status = raw_request(port, head, b'{"key":"header"')
    assert status is not None, "the server waited for the body"
    assert " 401 " in status or " 404 " in status, status


@pytest.mark.parametrize("route", ["preupload/main", "paths-info/main", "branch/b", "commit/main"])
def test_strangers_bodies_on_repository_routes_are_not_read(hub, route):
    repo = hub.create_repo(hub.alice, private=True, prefix="unread")
    port = int(hub.endpoint.rsplit(":", 1)[1])
    for auth in ("", f"Authorization: Bearer {hub.bob}\r\n"):
        head = (f"POST /api/models/{repo}/{route} HTTP/1.1\r\nHost: x\r\n{auth}"
                f"Content-Type: application/json\r\nContent-Length: {15 << 20}\r\n\r\n").encode()
        status = raw_request(port, head, b"{")
        assert status is not None, f"{route}: the server waited for the body"
        assert " 404 " in status or " 401 " in status, (route, status)


def test_anonymous_account_routes_are_refused_before_the_body(hub):
    port = int(hub.endpoint.rsplit(":", 1)[1])
    for path in ("/api/repos/create", "/api/repos/move"):
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {15 << 20}\r\n\r\n").encode()
        status = raw_request(port, head, b"{")
        assert status is not None and " 401 " in status, (path, status)


def test_declared_oversized_commit_is_refused_before_it_is_read(hub):
    repo = hub.create_repo(hub.alice, prefix="declared")
    port = int(hub.endpoint.rsplit(":", 1)[1])
    head = (f"POST /api/models/{repo}/commit/main HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {hub.alice}\r\nContent-Length: {4 << 30}\r\n\r\n").encode()
    status = raw_request(port, head)
    assert status is not None and " 413 " in status, status


def test_gzip_bodies_are_refused_outside_git(hub):
    bomb = gzip.compress(b"[" * (20 * MIB))  # 20 MiB of brackets in about 20 KB
    assert len(bomb) < 100_000
    for path in ("/api/validate-yaml", "/api/repos/create"):
        r = hub.request("POST", path, hub.alice, data=bomb,
                        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
        hub.assert_error(r, 415)


def test_commit_operation_and_size_caps(hub):
    repo = hub.create_repo(hub.alice, prefix="caps")
    too_many = [hub.op_delete(f"f{i}") for i in range(20_001)]
    hub.assert_error(hub.commit(repo, too_many, hub.alice), 413, message_contains="at most 20000")
    # Refused by the length of its base64, before decoding.
    r = hub.commit(repo, [hub.op_file("big.bin", os.urandom(11 * MIB))], hub.alice)
    hub.assert_error(r, 413, message_contains="LFS")
    # Just over the line: decoded, then refused by the one rule commits and pushes share.
    r = hub.commit(repo, [hub.op_file("big.bin", os.urandom(10 * MIB + 1))], hub.alice)
    hub.assert_error(r, 400, message_contains="files over 10 MiB must be stored with LFS")


# --- 3. tree bombs --------------------------------------------------------------------------

def make_tree_bomb(git, clone, levels=7, width=10):
    """Commits a tree naming one subtree `width` times per level: width**levels paths."""
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=clone, env=git.env, input=b"boom\n",
                          capture_output=True, check=True).stdout.decode().strip()
    tree_input = "".join(f"100644 blob {blob}\tf{i}\n" for i in range(width))
    tree = subprocess.run(["git", "mktree"], cwd=clone, env=git.env, input=tree_input.encode(),
                          capture_output=True, check=True).stdout.decode().strip()
    for _ in range(levels - 1):
        tree_input = "".join(f"040000 tree {tree}\td{i}\n" for i in range(width))
        tree = subprocess.run(["git", "mktree"], cwd=clone, env=git.env, input=tree_input.encode(),
                              capture_output=True, check=True).stdout.decode().strip()
    commit = git.out("commit-tree", tree, "-p", "HEAD", "-m", "bomb", cwd=clone)
    git.run("update-ref", "refs/heads/main", commit, cwd=clone)
    return commit


def test_tree_bomb_push_is_refused_quickly(hub, git):
    repo = hub.create_repo(hub.alice, prefix="bomb")
    before = hub.head_sha(repo)
    clone = git.clone(repo, "bomb", hub.alice)
    make_tree_bomb(git, clone)  # ten million paths in 17 objects
    started = time.monotonic()
    done = git.push(clone, "origin", "main")
    assert_refused(done, "more than 250000 files and folders")
    assert hub.head_sha(repo) == before
    # The server stayed healthy (no timing assert: just that it still answers).
    assert hub.request("GET", f"/api/models/{repo}").status_code == 200
    print(f"tree bomb refused in {time.monotonic() - started:.2f} s")


def test_deep_nesting_push_is_refused(hub, git):
    repo = hub.create_repo(hub.alice, prefix="deep")
    clone = git.clone(repo, "deep", hub.alice)
    make_tree_bomb(git, clone, levels=70, width=1)
    assert_refused(git.push(clone, "origin", "main"), "nest deeper than 64")


# --- 4. gated repositories: one decision for every content route ----------------------------

@pytest.fixture
def gated_repo(hub):
    repo = hub.create_repo(hub.alice, prefix="gated")
    data = os.urandom(2048)
    oid = hub.lfs_upload(repo, data, hub.alice)
    hub.commit_ok(repo, [hub.op_lfs("w.bin", oid, len(data)), hub.op_file("README.md", b"# gated\n")], hub.alice)
    hub.alice_api.update_repo_settings(repo, gated="manual")
    return repo, oid, len(data)


def test_gated_content_is_refused_on_every_route(hub, gated_repo, git):
    repo, oid, size = gated_repo
    for token in (None, hub.bob):
        r = hub.request("GET", f"/{repo}/resolve/main/w.bin", token)
        hub.assert_error(r, 403, code="GatedRepo")
        r = hub.lfs_batch(repo, [(oid, size)], token, operation="download")
        assert r.status_code in (401, 403), (r.status_code, r.text)
        assert r.headers.get("X-Error-Code") == "GatedRepo" or r.status_code == 401
        r = hub.request("GET", f"/api/models/{repo}/xet-read-token/main", token)
        hub.assert_error(r, 403, code="GatedRepo")
        r = hub.request("GET", f"/api/models/{repo}/auth-check", token)
        hub.assert_error(r, 403, code="GatedRepo")
    # git fetch: bob is asked for credentials he does not have access with.
    done = git.clone(repo, "gated-bob", hub.bob, check=False)
    assert done.returncode != 0
    # Metadata stays visible.
    assert hub.request("GET", f"/api/models/{repo}", hub.bob).status_code == 200
    assert hub.request("GET", f"/api/models/{repo}/tree/main", hub.bob).status_code == 200
    # The owner reads everything.
    assert hub.request("GET", f"/{repo}/resolve/main/w.bin", hub.alice).status_code == 200
    assert git.clone(repo, "gated-alice", hub.alice).exists()


# --- 6. authentication: limits, constant work, bounded hashing --------------------------------

@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A second server with small limits: 3 failed sign-ins per account, 30 API calls."""
    root = tmp_path_factory.mktemp("limited")
    data = root / "data"
    _cli("user", "add", "carol", "--email", "carol@example.com", "--password", "carol-pass-123", data_dir=data)
    token = _token("carol", "write", data)
    port = free_port()
    proc, log = start_server(data, port, root / "server.log", rate_limits="api=30,auth=3,window=300")
    yield f"http://127.0.0.1:{port}", token
    stop_server(proc, log)


def test_wrong_passwords_are_rate_limited(limited):
    endpoint, _ = limited
    url = f"{endpoint}/api/whoami-v2"
    codes = [requests.get(url, auth=("carol", f"wrong-{i}"), timeout=30).status_code for i in range(3)]
    assert codes == [401, 401, 401]
    r = requests.get(url, auth=("carol", "carol-pass-123"), timeout=30)
    assert r.status_code == 429, "even the right password waits once the account is locked"
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["RateLimit"].startswith('"auth";r=0;t=')
    assert r.headers.get("X-Error-Message", "").startswith("Too many failed sign-in attempts")


def test_api_requests_are_rate_limited_with_the_hubs_headers(limited):
    endpoint, token = limited
    h = {"Authorization": f"Bearer {token}"}
    first = requests.get(f"{endpoint}/api/models", headers=h, timeout=30)
    assert first.status_code == 200
    assert first.headers["RateLimit-Policy"] == '"fixed window";"api";q=30;w=300'
    assert first.headers["RateLimit"].startswith('"api";r=')
    statuses = [requests.get(f"{endpoint}/api/models", headers=h, timeout=30).status_code for _ in range(40)]
    assert 429 in statuses
    last = requests.get(f"{endpoint}/api/models", headers=h, timeout=30)
    assert last.status_code == 429 and last.headers["RateLimit"].startswith('"api";r=0;t=')
    # The official client reads those headers and explains the limit.
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    with pytest.raises(HfHubHTTPError, match="rate limit"):
        HfApi(endpoint=endpoint, token=token).whoami()


# --- 7. delegated credentials follow access -----------------------------------------------

def test_signed_download_url_stops_when_the_repo_turns_private(hub):
    repo = hub.create_repo(hub.alice, prefix="turns-private")
    data = os.urandom(1500)
    oid = hub.lfs_upload(repo, data, hub.alice)
    hub.commit_ok(repo, [hub.op_lfs("w.bin", oid, len(data))], hub.alice)
    r = hub.lfs_batch(repo, [(oid, len(data))], None, operation="download")
    href = r.json()["objects"][0]["actions"]["download"]["href"]
    assert requests.get(href, timeout=30).content == data
    hub.alice_api.update_repo_settings(repo, private=True)
    assert requests.get(href, timeout=30).status_code == 403
    hub.alice_api.update_repo_settings(repo, private=False)
    assert requests.get(href, timeout=30).content == data
    hub.alice_api.delete_repo(repo)
    assert requests.get(href, timeout=30).status_code == 403


def test_signed_upload_url_stops_when_its_token_is_revoked(hub):
    repo = hub.create_repo(hub.alice, prefix="revoked-upload")
    token = hub.cli("token", "add", "alice", "--role", "write").strip().splitlines()[-1]
    data = os.urandom(1200)
    oid = hashlib.sha256(data).hexdigest()
    r = hub.lfs_batch(repo, [(oid, len(data))], token)
    href = r.json()["objects"][0]["actions"]["upload"]["href"]
    hub.cli("token", "revoke", token)
    assert requests.put(href, data=data, timeout=30).status_code == 403


def test_xet_token_stops_when_the_hub_token_is_revoked(hub):
    repo = hub.create_repo(hub.alice, private=True, prefix="revoked-xet")
    token = hub.cli("token", "add", "alice", "--role", "read").strip().splitlines()[-1]
    r = hub.request("GET", f"/api/models/{repo}/xet-read-token/main", token)
    assert r.status_code == 200, r.text
    xet = r.json()["accessToken"]
    cas = r.json()["casUrl"]
    probe = f"{cas}/v1/reconstructions/{'0' * 64}"
    before = requests.get(probe, headers={"Authorization": f"Bearer {xet}"}, timeout=30)
    assert before.status_code == 404  # a valid token asking for an unknown file
    hub.cli("token", "revoke", token)
    after = requests.get(probe, headers={"Authorization": f"Bearer {xet}"}, timeout=30)
    assert after.status_code == 401


# --- 8. one rule for regular files; ranges of git blobs ---------------------------------------

def test_range_reads_of_git_stored_files(hub):
    repo = hub.create_repo(hub.alice, prefix="ranges")
    text = ("".join(f"line {i}\n" for i in range(200_000))).encode()  # about 2 MiB of text
    assert len(text) < 10 * MIB
    hub.commit_ok(repo, [hub.op_file("big.txt", text)], hub.alice)
    for start, end in ((0, 9), (1_000_000, 1_000_099), (len(text) - 5, len(text) - 1)):
        r = hub.request("GET", f"/{repo}/resolve/main/big.txt", headers={"Range": f"bytes={start}-{end}"})
        assert r.status_code == 206
        assert r.content == text[start:end + 1]
    assert hub.request("GET", f"/{repo}/resolve/main/big.txt").content == text


# --- 9. no framing ------------------------------------------------------------------------

def test_pages_and_api_answers_cannot_be_framed(hub):
    repo = hub.create_repo(hub.alice, prefix="frames")
    for path in (f"/{repo}/settings", f"/{repo}", "/api/models", "/login"):
        r = hub.request("GET", path, hub.alice)
        assert r.headers.get("X-Frame-Options") == "DENY", path
        assert "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", ""), path
        assert r.headers.get("X-Content-Type-Options") == "nosniff", path


# --- force-pushed secrets are not fetchable -----------------------------------------------

@pytest.mark.parametrize("version", ["0", "2"])
def test_unreachable_commits_cannot_be_fetched(hub, git, version):
    repo = hub.create_repo(hub.alice, prefix="unreachable")
    clone = git.clone(repo, f"secret-{version}", hub.alice)
    secret = git.commit_files(clone, {"secret.txt": b"api key\n"}, "oops")
    assert git.push(clone, "origin", "main").returncode == 0
    git.run("reset", "-q", "--hard", "HEAD~1", cwd=clone)
    assert git.push(clone, "-f", "origin", "main").returncode == 0
    other = git.root / f"other-{version}"
    git.run("init", "-q", other)
    done = git.run("-c", f"protocol.version={version}", "fetch", git.url(repo), secret, cwd=other, check=False)
    assert done.returncode != 0
    assert git.run("cat-file", "-e", secret, cwd=other, check=False).returncode != 0


# --- connections: bounded headers, slow clients -------------------------------------------

def test_oversized_headers_are_refused(hub):
    port = int(hub.endpoint.rsplit(":", 1)[1])
    head = b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * (100 * 1024) + b"\r\n\r\n"
    status = raw_request(port, head)
    assert status is not None and " 431 " in status, status


def test_a_client_that_never_finishes_its_headers_is_dropped(hub):
    port = int(hub.endpoint.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        s.settimeout(45)
        started = time.monotonic()
        try:
            data = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            data = None
        assert data is not None, "the server kept a half-sent request open for 45 s"
        print(f"dropped after {time.monotonic() - started:.1f} s")


def test_many_idle_connections_do_not_stop_service(hub):
    port = int(hub.endpoint.rsplit(":", 1)[1])
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        r = requests.get(f"{hub.endpoint}/api/models", timeout=10)
        assert r.status_code == 200
    finally:
        for s in idle:
            s.close()


def test_api_commits_do_not_publish_the_authors_email(hub, git):
    repo = hub.create_repo(hub.alice, prefix="email")
    hub.commit_ok(repo, [hub.op_file("a.txt", b"a\n")], hub.alice)
    clone = git.clone(repo, "email", hub.alice)
    emails = set(git.out("log", "--format=%ae%n%ce", cwd=clone).split())
    assert "alice@example.com" not in emails
    assert "alice@users.noreply.wharf" in emails


def test_a_push_of_more_refs_than_a_repo_may_hold_is_refused(hub, git):
    repos = Path(hub.data_dir) / "repos"
    before = {p.name for p in repos.glob("*.git")}
    repo = hub.create_repo(hub.alice, prefix="many-refs")
    (folder,) = [p for p in repos.glob("*.git") if p.name not in before]
    clone = git.clone(repo, "many-refs", hub.alice)
    head = git.head(clone)
    # The repository already holds 9,998 tags (written as packed refs on the server, which is
    # what ten thousand pushed refs cost a client to send): two more fit, three do not.
    packed = folder / "packed-refs"
    old = packed.read_text() if packed.exists() else "# pack-refs with: peeled fully-peeled sorted \n"
    packed.write_text(old + "".join(f"{head} refs/tags/old{i:05d}\n" for i in range(9_998)))
    for name in ("a", "b", "c"):
        git.run("tag", name, cwd=clone)
    assert_refused(git.push(clone, "origin", "a", "b", "c"), "at most 10000 branches, tags and pull requests")
    assert git.push(clone, "origin", "a").returncode == 0
    r = hub.request("POST", f"/api/models/{repo}/tag/main", hub.alice, json={"tag": "api"})
    hub.assert_error(r, 400, message_contains="at most 10000 branches, tags and pull requests")
