"""Xet storage: uploads and downloads through the CAS with the official client and hf_xet, the
plain-HTTP and git-lfs fallbacks for Xet-stored files, and the CAS's refusals (raw HTTP).

`conftest.py` sets HF_HUB_DISABLE_XET=1 for the whole run, and huggingface_hub reads it when it
is imported, so every Xet transfer here runs the official client in a subprocess whose
environment does not have it. In-process `HfApi` calls (plain HTTP) stay as they are.

What is checked that Xet was really used: after a Xet upload no LFS blob exists on disk and
xorbs do; a Xet download runs with the client's plain-HTTP download function replaced by one
that fails, and counts calls to its Xet download function; uploads report hf_xet's own
deduplication metrics (bytes deduplicated through the server's answers, bytes sent as new). Every
client run has its own HF_HOME, so hf_xet's local caches never hide what the server answered.
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from test_git import Git

MIB = 1024 * 1024

# --- the official client with Xet, in a subprocess ------------------------------------------------

CLIENT_PRELUDE = textwrap.dedent("""
    import hashlib, json, os, sys
    params = json.loads(os.environ["XET_TEST_PARAMS"])
    import huggingface_hub.file_download as fd
    from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.utils._runtime import is_xet_available
    assert is_xet_available(), "hf_xet must be importable and enabled for these tests"
    calls = {"xet": 0}
    _xet_get = fd.xet_get
    def _counting_xet_get(*a, **k):
        calls["xet"] += 1
        return _xet_get(*a, **k)
    fd.xet_get = _counting_xet_get
    if params.get("forbid_http"):
        def _no_http(*a, **k):
            raise RuntimeError("the plain HTTP download path was used")
        fd.http_get = _no_http
    api = HfApi(token=params.get("token") or False)
    # Keep the upload handles hf_xet returns, to read their deduplication metrics afterwards.
    import huggingface_hub.utils._xet as _hx
    _handles = []
    class _Commit:
        def __init__(self, inner):
            self._inner = inner
        def start_upload_file(self, *a, **k):
            h = self._inner.start_upload_file(*a, **k)
            _handles.append(h)
            return h
        def start_upload_bytes(self, *a, **k):
            h = self._inner.start_upload_bytes(*a, **k)
            _handles.append(h)
            return h
        def __getattr__(self, name):
            return getattr(self._inner, name)
    class _CommitContext:
        def __init__(self, cm):
            self._cm = cm
        def __enter__(self):
            return _Commit(self._cm.__enter__())
        def __exit__(self, *exc):
            return self._cm.__exit__(*exc)
    class _Session:
        def __init__(self, inner):
            self._inner = inner
        def new_upload_commit(self, *a, **k):
            return _CommitContext(self._inner.new_upload_commit(*a, **k))
        def __getattr__(self, name):
            return getattr(self._inner, name)
    _get_session = _hx.get_xet_session
    _hx.get_xet_session = lambda *a, **k: _Session(_get_session(*a, **k))
    def dedup_metrics():
        m = _handles[0].result().dedup_metrics
        return {"deduped_by_global": m.deduped_bytes_by_global_dedup, "new_bytes": m.new_bytes,
                "total": m.total_bytes}
    def sha256_file(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
""")


def run_client(hub, body, **params):
    """Runs `body` after CLIENT_PRELUDE with the official client, Xet enabled; returns the JSON
    object the script prints on its last line."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    home = tempfile.mkdtemp(prefix="wharf-test-xet-home-")
    env.update(HF_ENDPOINT=hub.endpoint, HF_HOME=home, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", XET_TEST_PARAMS=json.dumps(params))
    script = CLIENT_PRELUDE + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"client script failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


UPLOAD = """
    path = params["path"]
    if params.get("create_pr"):
        info = api.create_commit(params["repo"], operations=[CommitOperationAdd(path_in_repo=params["name"],
                                 path_or_fileobj=path)], commit_message="xet upload", create_pr=True)
        out = {"commit": info.oid, "pr": info.pr_num}
    else:
        info = api.upload_file(path_or_fileobj=path, path_in_repo=params["name"], repo_id=params["repo"],
                               commit_message="xet upload")
        out = {"commit": info.oid}
    out["dedup"] = dedup_metrics()
    print(json.dumps(out))
"""

DOWNLOAD = """
    p = hf_hub_download(params["repo"], params["name"], revision=params.get("revision"),
                        cache_dir=params["cache"], token=params.get("token") or False)
    print(json.dumps({"sha256": sha256_file(p), "xet_calls": calls["xet"]}))
"""

SNAPSHOT = """
    d = snapshot_download(params["repo"], cache_dir=params["cache"], token=params.get("token") or False)
    files = {}
    for root, _, names in os.walk(d):
        for n in names:
            full = os.path.join(root, n)
            files[os.path.relpath(full, d)] = sha256_file(full)
    print(json.dumps({"files": files, "xet_calls": calls["xet"]}))
"""


def xet_upload(hub, tmp_path, repo, name, data, token, create_pr=False):
    path = tmp_path / f"upload-{hashlib.sha256(data).hexdigest()[:12]}"
    path.write_bytes(data)
    return run_client(hub, UPLOAD, repo=repo, name=name, path=str(path), token=token, create_pr=create_pr)


def xet_download(hub, tmp_path, repo, name, token=None, revision=None):
    cache = tempfile.mkdtemp(prefix="cache-", dir=tmp_path)
    return run_client(hub, DOWNLOAD, repo=repo, name=name, token=token, revision=revision, cache=cache,
                      forbid_http=True)


# --- helpers ------------------------------------------------------------------------------------

def lfs_blob_path(hub, oid):
    return Path(hub.data_dir) / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def stored_xorbs(hub):
    root = Path(hub.data_dir) / "xet" / "xorbs"
    return {p.name for p in root.rglob("*") if p.is_file()}


def xet_token(hub, repo, token, scope="write", revision="main", repo_type="model"):
    r = hub.request("GET", f"/api/{repo_type}s/{repo}/xet-{scope}-token/{quote(revision, safe='')}", token)
    assert r.status_code == 200, (r.status_code, r.text)
    body = r.json()
    assert r.headers["X-Xet-Access-Token"] == body["accessToken"]
    assert r.headers["X-Xet-Cas-Url"] == body["casUrl"] == f"{hub.endpoint}/api/xet"
    assert int(r.headers["X-Xet-Token-Expiration"]) == body["exp"]
    return body["accessToken"]


def cas(hub, method, path, xet, **kw):
    headers = dict(kw.pop("headers", {}))
    if xet:
        headers["Authorization"] = f"Bearer {xet}"
    kw.setdefault("timeout", 60)
    return requests.request(method, f"{hub.endpoint}/api/xet{path}", headers=headers, **kw)


SHARD_TAG = b"HFRepoMetaData\x00" + bytes([85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205,
                                            209, 74, 169])
BOOKEND = b"\xff" * 32 + b"\x00" * 16


def xet_hash_bytes(h):
    """The 32 stored bytes of a Xet hash string (four little-endian u64 words in hex)."""
    return b"".join(struct.pack("<Q", int(h[i:i + 16], 16)) for i in range(0, 64, 16))


def shard_bytes(file_hash, terms, sha256=None, verification=None):
    """An upload-format shard with one file: terms are (xorb hash, chunk start, end, raw length);
    `verification` defaults to all-zero range hashes (wrong for any real data)."""
    flags = 0x80000000 | (0x40000000 if sha256 else 0)
    out = SHARD_TAG + struct.pack("<QQ", 2, 0)
    out += xet_hash_bytes(file_hash) + struct.pack("<IIQ", flags, len(terms), 0)
    for xorb, start, end, raw in terms:
        out += xet_hash_bytes(xorb) + struct.pack("<IIII", 0, raw, start, end)
    for i in range(len(terms)):
        v = verification[i] if verification else b"\x00" * 32
        out += v + b"\x00" * 16
    if sha256:
        out += xet_hash_bytes(sha256) + b"\x00" * 16
    return out + BOOKEND + BOOKEND


def plain_chunk(raw):
    """One uncompressed xorb chunk: version 0, u24 length, scheme 0, u24 length, data."""
    n = len(raw)
    return bytes([0]) + n.to_bytes(3, "little") + bytes([0]) + n.to_bytes(3, "little") + raw


# --- fixtures -----------------------------------------------------------------------------------

WEIGHTS_SIZE = 5 * MIB + 1234


@pytest.fixture(scope="module")
def uploaded(hub, tmp_path_factory):
    """A public repo of alice's with `weights.bin` (5 MiB of random bytes) uploaded through Xet."""
    tmp = tmp_path_factory.mktemp("xet-upload")
    repo = hub.create_repo(hub.alice, prefix="xet")
    weights = os.urandom(WEIGHTS_SIZE)
    before = stored_xorbs(hub)
    out = xet_upload(hub, tmp, repo, "weights.bin", weights, hub.alice)
    sha = hashlib.sha256(weights).hexdigest()
    head = hub.request("HEAD", f"/{repo}/resolve/main/weights.bin")
    return {"repo": repo, "data": weights, "sha": sha, "commit": out["commit"],
            "new_xorbs": stored_xorbs(hub) - before, "xet_hash": head.headers.get("X-Xet-Hash")}


# --- uploads through Xet --------------------------------------------------------------------------

def test_xet_upload_stores_xorbs_not_an_lfs_blob(hub, uploaded):
    assert uploaded["new_xorbs"], "the upload stored no xorb: Xet was not used"
    assert not lfs_blob_path(hub, uploaded["sha"]).exists(), "an LFS blob exists: the upload used LFS"
    info = hub.alice_api.model_info(uploaded["repo"], files_metadata=True)
    assert info.sha == uploaded["commit"]
    w = {s.rfilename: s for s in info.siblings}["weights.bin"]
    assert w.size == WEIGHTS_SIZE and w.lfs is not None and w.lfs.sha256 == uploaded["sha"]


def test_resolve_head_announces_xet(hub, uploaded):
    r = hub.request("HEAD", f"/{uploaded['repo']}/resolve/main/weights.bin")
    assert r.status_code == 200
    assert r.headers["X-Repo-Commit"] == uploaded["commit"]
    assert r.headers["X-Linked-Etag"] == f'"{uploaded["sha"]}"'
    assert int(r.headers["X-Linked-Size"]) == WEIGHTS_SIZE
    xet_hash = r.headers["X-Xet-Hash"]
    assert len(xet_hash) == 64 and all(c in "0123456789abcdef" for c in xet_hash)
    link = requests.utils.parse_header_links(r.headers["Link"])
    auth = [entry for entry in link if entry.get("rel") == "xet-auth"]
    assert auth == [{"url": f"{hub.endpoint}/api/models/{uploaded['repo']}/xet-read-token/{uploaded['commit']}",
                     "rel": "xet-auth"}]


def test_tree_and_paths_info_carry_xet_hash(hub, uploaded):
    r = hub.request("GET", f"/api/models/{uploaded['repo']}/tree/main", hub.alice)
    entries = {e["path"]: e for e in r.json()}
    assert entries["weights.bin"]["xetHash"] == uploaded["xet_hash"]
    assert entries["weights.bin"]["lfs"]["oid"] == uploaded["sha"]
    assert all("xetHash" not in e for p, e in entries.items() if p != "weights.bin")
    r = hub.request("POST", f"/api/models/{uploaded['repo']}/paths-info/main", hub.alice,
                    json={"paths": ["weights.bin"]})
    assert r.json()[0]["xetHash"] == uploaded["xet_hash"]


def test_xet_upload_in_a_pull_request(hub, tmp_path):
    repo = hub.create_repo(hub.alice, prefix="xet-pr")
    data = os.urandom(2 * MIB)
    out = xet_upload(hub, tmp_path, repo, "pr.bin", data, hub.alice, create_pr=True)
    assert out["pr"] == 1
    got = xet_download(hub, tmp_path, repo, "pr.bin", token=hub.alice, revision="refs/pr/1")
    assert got["sha256"] == hashlib.sha256(data).hexdigest()


# --- downloads of a Xet-stored file ---------------------------------------------------------------

def test_plain_resolve_reconstructs_with_ranges(hub, uploaded):
    url = f"/{uploaded['repo']}/resolve/main/weights.bin"
    r = hub.request("GET", url)
    assert r.status_code == 200 and r.content == uploaded["data"]
    assert int(r.headers["Content-Length"]) == WEIGHTS_SIZE
    for spec, start, end in [("100-199", 100, 199), ("0-0", 0, 0),
                             (f"{WEIGHTS_SIZE - 10}-", WEIGHTS_SIZE - 10, WEIGHTS_SIZE - 1),
                             ("-5", WEIGHTS_SIZE - 5, WEIGHTS_SIZE - 1),
                             ("3000000-3200000", 3000000, 3200000)]:
        r = hub.request("GET", url, headers={"Range": f"bytes={spec}"})
        assert r.status_code == 206, (spec, r.status_code)
        assert r.headers["Content-Range"] == f"bytes {start}-{end}/{WEIGHTS_SIZE}"
        assert r.content == uploaded["data"][start:end + 1], spec
    r = hub.request("GET", url, headers={"Range": f"bytes={WEIGHTS_SIZE}-"})
    assert r.status_code == 416


def test_client_without_xet_downloads_over_http(hub, uploaded, tmp_path):
    # This process has HF_HUB_DISABLE_XET=1 (conftest): the plain resolve path.
    from huggingface_hub import hf_hub_download
    p = hf_hub_download(uploaded["repo"], "weights.bin", cache_dir=str(tmp_path / "cache"), token=False)
    assert hashlib.sha256(Path(p).read_bytes()).hexdigest() == uploaded["sha"]


def test_git_lfs_clone_gets_the_xet_file(hub, uploaded, tmp_path):
    g = Git(hub, tmp_path)
    clone = g.clone(uploaded["repo"], "clone")
    weights = clone / "weights.bin"
    assert weights.stat().st_size == WEIGHTS_SIZE
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == uploaded["sha"]


def test_xet_client_downloads_through_the_cas(hub, uploaded, tmp_path):
    got = xet_download(hub, tmp_path, uploaded["repo"], "weights.bin")  # anonymous, public repo
    assert got == {"sha256": uploaded["sha"], "xet_calls": 1}
    got = xet_download(hub, tmp_path, uploaded["repo"], "weights.bin", token=hub.alice,
                       revision=uploaded["commit"])
    assert got == {"sha256": uploaded["sha"], "xet_calls": 1}
    # snapshot_download takes the Xet hash from the tree listing.
    cache = tempfile.mkdtemp(prefix="snap-", dir=tmp_path)
    snap = run_client(hub, SNAPSHOT, repo=uploaded["repo"], cache=cache, forbid_http=False)
    assert snap["files"]["weights.bin"] == uploaded["sha"]
    assert snap["xet_calls"] == 1


def wait_for_xet_hash(hub, url, token=None, timeout=60):
    """Polls `HEAD url` until it announces a Xet hash (background LFS -> Xet conversion)."""
    deadline = time.monotonic() + timeout
    while True:
        head = hub.request("HEAD", url, token)
        assert head.status_code == 200, head.status_code
        if "X-Xet-Hash" in head.headers:
            return head.headers["X-Xet-Hash"]
        assert time.monotonic() < deadline, "the LFS object was not converted to Xet in time"
        time.sleep(0.2)


def test_lfs_upload_is_converted_and_downloads_through_xet(hub, tmp_path):
    repo = hub.create_repo(hub.alice, private=True, prefix="xet-from-lfs")
    data = os.urandom(3 * MIB + 5)
    oid = hub.lfs_upload(repo, data, hub.alice)
    hub.commit_ok(repo, [hub.op_lfs("lfs.bin", oid, len(data))], hub.alice)
    xet_hash = wait_for_xet_hash(hub, f"/{repo}/resolve/main/lfs.bin", hub.alice)
    assert lfs_blob_path(hub, oid).exists(), "the LFS blob stays (the plain-HTTP fast path)"
    got = xet_download(hub, tmp_path, repo, "lfs.bin", token=hub.alice)
    assert got == {"sha256": oid, "xet_calls": 1}
    # Wharf's conversion chunks exactly like hf_xet: the same bytes uploaded through Xet get the
    # same file hash (and, being alice's, deduplicate entirely against the converted xorbs).
    other = hub.create_repo(hub.alice, private=True, prefix="xet-from-lfs-b")
    up = xet_upload(hub, tmp_path, other, "same.bin", data, hub.alice)
    assert up["dedup"]["new_bytes"] == 0, up
    head = hub.request("HEAD", f"/{other}/resolve/main/same.bin", hub.alice)
    assert head.headers["X-Xet-Hash"] == xet_hash


def test_git_lfs_push_is_converted(hub, tmp_path):
    g = Git(hub, tmp_path)
    repo = hub.create_repo(hub.alice, prefix="xet-git-push")
    clone = g.clone(repo, "clone", hub.alice, user="alice")
    g.run("lfs", "install", "--local", cwd=clone)
    data = os.urandom(2 * MIB)
    (clone / "pushed.bin").write_bytes(data)
    g.run("add", "pushed.bin", cwd=clone)
    g.run("commit", "-q", "-m", "weights", cwd=clone)
    g.push(clone, "origin", "main", check=True)
    wait_for_xet_hash(hub, f"/{repo}/resolve/main/pushed.bin")
    got = xet_download(hub, tmp_path, repo, "pushed.bin")
    assert got == {"sha256": hashlib.sha256(data).hexdigest(), "xet_calls": 1}


# --- access control -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def private_upload(hub, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xet-private")
    repo = hub.create_repo(hub.alice, private=True, prefix="xet-private")
    data = os.urandom(3 * MIB + 17)
    xet_upload(hub, tmp, repo, "secret.bin", data, hub.alice)
    head = hub.request("HEAD", f"/{repo}/resolve/main/secret.bin", hub.alice)
    return {"repo": repo, "data": data, "sha": hashlib.sha256(data).hexdigest(),
            "xet_hash": head.headers["X-Xet-Hash"]}


def test_owner_reconstructs_and_fetches(hub, private_upload):
    xet = xet_token(hub, private_upload["repo"], hub.alice, scope="read")
    size = len(private_upload["data"])
    r = cas(hub, "GET", f"/v2/reconstructions/{private_upload['xet_hash']}", xet,
            headers={"Range": f"bytes=0-{size - 1}"})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["offset_into_first_range"] == 0
    assert sum(t["unpacked_length"] for t in plan["terms"]) == size
    fetch = next(iter(plan["xorbs"].values()))[0]
    rng = fetch["ranges"][0]["bytes"]
    # Fetch URLs authorise themselves: no Authorization header.
    got = requests.get(fetch["url"], headers={"Range": f"bytes={rng['start']}-{rng['end']}"}, timeout=60)
    assert got.status_code == 206
    assert len(got.content) == rng["end"] - rng["start"] + 1
    assert got.headers["Content-Range"].startswith(f"bytes {rng['start']}-{rng['end']}/")
    # A range outside the signed one, or a tampered one, is refused.
    outside = requests.get(fetch["url"], headers={"Range": f"bytes={rng['start']}-{rng['end'] + 1}"}, timeout=60)
    assert outside.status_code == 403
    tampered = fetch["url"].replace(f"r={rng['start']}-{rng['end']}", f"r={rng['start']}-{rng['end'] + 1}")
    assert requests.get(tampered, timeout=60).status_code == 403
    # v1 answers the same terms.
    r1 = cas(hub, "GET", f"/v1/reconstructions/{private_upload['xet_hash']}", xet)
    assert r1.status_code == 200 and r1.json()["terms"] == plan["terms"]
    # Past the end of the file.
    r = cas(hub, "GET", f"/v2/reconstructions/{private_upload['xet_hash']}", xet,
            headers={"Range": f"bytes={size}-{size + 10}"})
    assert r.status_code == 416


def test_other_user_cannot_reconstruct_a_private_file(hub, private_upload, tmp_path):
    # No token for the private repo: it looks missing.
    r = hub.request("GET", f"/api/models/{private_upload['repo']}/xet-read-token/main", hub.bob)
    hub.assert_error(r, 404, code="RepoNotFound")
    r = hub.request("GET", f"/api/models/{private_upload['repo']}/xet-read-token/main")
    assert r.status_code in (401, 404)
    # With a valid token for a repo of his own, bob asks for alice's file hash: the answer is
    # exactly that of a hash nobody uploaded.
    own = hub.create_repo(hub.bob, prefix="bob-xet")
    xet = xet_token(hub, own, hub.bob, scope="read")
    missing = "0" * 63 + "1"
    for version in ("v1", "v2"):
        theirs = cas(hub, "GET", f"/{version}/reconstructions/{private_upload['xet_hash']}", xet)
        nothing = cas(hub, "GET", f"/{version}/reconstructions/{missing}", xet)
        assert theirs.status_code == nothing.status_code == 404
        assert theirs.json() == nothing.json()
        assert theirs.headers.get("X-Error-Message") == nothing.headers.get("X-Error-Message")
    # Knowing the sha256 does not let bob commit it either.
    r = hub.commit(own, [hub.op_lfs("stolen.bin", private_upload["sha"], len(private_upload["data"]))], hub.bob)
    hub.assert_error(r, 400, message_contains="was not uploaded to this repository")
    # And his own Xet client cannot download it through his repo.
    r = hub.request("HEAD", f"/{own}/resolve/main/stolen.bin", hub.bob)
    assert r.status_code == 404


def test_cas_refuses_hub_tokens_and_read_tokens_for_writes(hub, uploaded):
    r = cas(hub, "GET", f"/v2/reconstructions/{uploaded['xet_hash']}", hub.alice)
    hub.assert_error(r, 401)
    r = cas(hub, "GET", f"/v2/reconstructions/{uploaded['xet_hash']}", None)
    hub.assert_error(r, 401)
    read = xet_token(hub, uploaded["repo"], hub.alice, scope="read")
    r = cas(hub, "POST", "/v1/xorbs/default/" + "0" * 64, read, data=plain_chunk(b"x" * 100))
    hub.assert_error(r, 403)
    r = cas(hub, "POST", "/v1/shards", read, data=shard_bytes("0" * 64, []))
    hub.assert_error(r, 403)
    # A read-only hub token gets no write token.
    r = hub.request("GET", f"/api/models/{uploaded['repo']}/xet-write-token/main", hub.alice_read)
    hub.assert_error(r, 403)
    # Another user gets no write token for alice's public repo.
    r = hub.request("GET", f"/api/models/{uploaded['repo']}/xet-write-token/main", hub.bob)
    hub.assert_error(r, 403)


# --- corrupted uploads ----------------------------------------------------------------------------

def test_corrupted_xorbs_are_refused_and_not_stored(hub):
    repo = hub.create_repo(hub.alice, prefix="xet-bad-xorb")
    xet = xet_token(hub, repo, hub.alice)
    before = stored_xorbs(hub)
    good_form = plain_chunk(os.urandom(1000)) + plain_chunk(os.urandom(500))
    claimed = hashlib.sha256(good_form).hexdigest()  # well-formed hex, but not this content's hash
    cases = [
        good_form,                                  # hash mismatch
        good_form[:-1],                             # truncated data
        good_form[:5],                              # truncated header
        b"\x07" + good_form[1:],                    # unknown chunk version
        good_form[:4] + b"\x63" + good_form[5:],    # unknown compression scheme
        b"",                                        # empty
    ]
    for body in cases:
        r = cas(hub, "POST", f"/v1/xorbs/default/{claimed}", xet, data=body)
        hub.assert_error(r, 400)
    r = cas(hub, "POST", "/v1/xorbs/default/NOT-A-HASH", xet, data=good_form)
    hub.assert_error(r, 400)
    r = cas(hub, "POST", "/v1/xorbs/other/" + claimed, xet, data=good_form)
    hub.assert_error(r, 400)
    assert stored_xorbs(hub) == before, "a refused xorb left an object behind"


def test_corrupted_shards_are_refused_and_register_nothing(hub, uploaded):
    repo = hub.create_repo(hub.alice, prefix="xet-bad-shard")
    xet = xet_token(hub, repo, hub.alice)
    # Garbage and a truncated shard.
    for version in ("v1", "v2"):
        r = cas(hub, "POST", f"/{version}/shards", xet, data=b"definitely not a shard" * 4)
        hub.assert_error(r, 400)
        r = cas(hub, "POST", f"/{version}/shards", xet, data=shard_bytes("1" * 64, [])[:-20])
        hub.assert_error(r, 400)

    # Terms that name a real, stored xorb with a wrong verification hash, and a xorb that does
    # not exist: the same refusal, so the answer says nothing about which xorbs exist.
    read = xet_token(hub, uploaded["repo"], hub.alice, scope="read")
    plan = cas(hub, "GET", f"/v2/reconstructions/{uploaded['xet_hash']}", read).json()
    term = plan["terms"][0]
    real = (term["hash"], term["range"]["start"], term["range"]["end"], term["unpacked_length"])
    fake = ("2" * 64, 0, 1, 1000)
    claimed_sha = "3" * 64
    file_hash = "4" * 64
    messages = []
    for t in (real, fake):
        for version in ("v1", "v2"):
            r = cas(hub, "POST", f"/{version}/shards", xet, data=shard_bytes(file_hash, [t], sha256=claimed_sha))
            msg = hub.assert_error(r, 400)
            messages.append(msg)
    assert len(set(messages)) == 1, messages
    assert messages[0] == f"term 0 of file {file_hash} does not verify"
    # Nothing was linked: a commit naming the claimed sha256 is refused.
    r = hub.commit(repo, [hub.op_lfs("forged.bin", claimed_sha, 1000)], hub.alice)
    hub.assert_error(r, 400, message_contains="was not uploaded to this repository")
    r = hub.commit(repo, [hub.op_lfs("copied.bin", uploaded["sha"], WEIGHTS_SIZE)], hub.alice)
    hub.assert_error(r, 400, message_contains="was not uploaded to this repository")


# --- global deduplication -------------------------------------------------------------------------

def test_dedup_within_what_the_uploader_can_read(hub, tmp_path):
    data = os.urandom(4 * MIB + 99)
    sha = hashlib.sha256(data).hexdigest()
    first = hub.create_repo(hub.alice, private=True, prefix="xet-dedup-a")
    up = xet_upload(hub, tmp_path, first, "w.bin", data, hub.alice)
    assert up["dedup"]["deduped_by_global"] == 0 and up["dedup"]["new_bytes"] == len(data), up

    # The same content again, into another of alice's repos: only a shard goes up.
    second = hub.create_repo(hub.alice, private=True, prefix="xet-dedup-b")
    up = xet_upload(hub, tmp_path, second, "copy.bin", data, hub.alice)
    assert up["dedup"]["deduped_by_global"] > 0 and up["dedup"]["new_bytes"] == 0, up
    assert xet_download(hub, tmp_path, second, "copy.bin", token=hub.alice)["sha256"] == sha

    # Bob cannot see alice's private repos: no dedup against them, his upload sends everything.
    own = hub.create_repo(hub.bob, prefix="xet-dedup-bob")
    up = xet_upload(hub, tmp_path, own, "mine.bin", data, hub.bob)
    assert up["dedup"]["deduped_by_global"] == 0 and up["dedup"]["new_bytes"] == len(data), up
    assert xet_download(hub, tmp_path, own, "mine.bin", token=hub.bob)["sha256"] == sha

    # Content a file of alice's shares, once her repo is public, deduplicates for bob too.
    hub.alice_api.update_repo_settings(first, private=False)
    extended = data + os.urandom(MIB)
    more = hub.create_repo(hub.bob, prefix="xet-dedup-bob2")
    up = xet_upload(hub, tmp_path, more, "more.bin", extended, hub.bob)
    assert up["dedup"]["deduped_by_global"] > 0, up
    assert 0 < up["dedup"]["new_bytes"] < len(extended), up
    # The file spans old and new xorbs; every way of reading it agrees.
    want = hashlib.sha256(extended).hexdigest()
    assert xet_download(hub, tmp_path, more, "more.bin", token=hub.bob)["sha256"] == want
    r = hub.request("GET", f"/{more}/resolve/main/more.bin", hub.bob)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == want
    r = hub.request("GET", f"/{more}/resolve/main/more.bin", hub.bob, headers={"Range": "bytes=4194000-4195000"})
    assert r.status_code == 206 and r.content == extended[4194000:4195001]


def test_dedup_query_needs_a_xet_token(hub):
    r = cas(hub, "GET", "/v1/chunks/default/" + "0" * 64, None)
    hub.assert_error(r, 401)
    r = cas(hub, "GET", "/v1/chunks/default/" + "0" * 64, hub.alice)
    hub.assert_error(r, 401)


def test_telemetry_is_accepted(hub):
    r = requests.post(f"{hub.endpoint}/v1/telemetry", json={"events": []}, timeout=30)
    assert r.status_code == 204


# --- storage accounting and garbage collection ------------------------------------------------------

def storage_stats(hub):
    report = json.loads(hub.cli("storage", "stats", "--json"))
    return report, {r["repo"]: r for r in report["repos"]}


def gc(hub, *flags):
    return json.loads(hub.cli("gc", "--grace", "0", "--json", *flags))


def test_storage_accounting_and_gc(hub, tmp_path):
    base = os.urandom(4 * MIB + 321)
    tuned = bytearray(base)
    tuned[2 * MIB:2 * MIB + 256 * 1024] = os.urandom(256 * 1024)  # a "fine-tuned" region
    tuned = bytes(tuned)
    # Other tests' xorbs (some of them garbage already) are left out of the sets below.
    earlier = stored_xorbs(hub)
    keep = hub.create_repo(hub.alice, prefix="xet-gc-keep")
    xet_upload(hub, tmp_path, keep, "base.bin", base, hub.alice)
    kept_xorbs = stored_xorbs(hub) - earlier
    gone = hub.create_repo(hub.alice, prefix="xet-gc-gone")
    xet_upload(hub, tmp_path, gone, "base.bin", base, hub.alice)
    up = xet_upload(hub, tmp_path, gone, "tuned.bin", tuned, hub.alice)
    assert 0 < up["dedup"]["new_bytes"] < len(tuned) // 4, up
    only_gone = stored_xorbs(hub) - kept_xorbs - earlier
    assert only_gone, "the changed region needs new xorbs"

    # Logical bytes count both files; physical bytes count the shared xorbs once.
    report, repos = storage_stats(hub)
    g = repos[gone]
    assert g["lfs_objects"] == 2 and g["lfs_bytes"] == 2 * len(base), g
    assert g["logical_bytes"] == g["lfs_bytes"] + g["git_bytes"], g
    assert g["lfs_blob_bytes"] == 0, "Xet uploads keep no whole-file blob"
    assert len(base) < g["xorb_bytes"] < 1.2 * len(base), g
    assert g["physical_bytes"] < g["logical_bytes"], g
    assert repos[keep]["xorb_bytes"] >= len(base)
    assert report["total_physical_bytes"] == report["git_bytes"] + report["lfs_blob_bytes"] + report["xorb_bytes"]
    assert report["dedup_ratio"] > 0
    # Repo info reports the same logical bytes as usedStorage.
    assert hub.alice_api.model_info(gone).used_storage == g["logical_bytes"]

    # A plain LFS upload in a repository that goes away too: its blob becomes garbage.
    lfs_repo = hub.create_repo(hub.alice, prefix="xet-gc-lfs")
    blob = os.urandom(64 * 1024 + 5)
    oid = hub.lfs_upload(lfs_repo, blob, hub.alice)
    hub.commit_ok(lfs_repo, [hub.op_lfs("w.bin", oid, len(blob))], hub.alice)
    hub.alice_api.delete_repo(gone)
    hub.alice_api.delete_repo(lfs_repo)
    assert lfs_blob_path(hub, oid).exists(), "deleting a repo only drops its links"

    # The dry run reports and deletes nothing.
    before = stored_xorbs(hub)
    dry = gc(hub)
    assert dry["applied"] is False
    assert dry["xet_files"]["count"] >= 1 and dry["xorbs"]["count"] >= len(only_gone), dry
    assert dry["lfs_blobs"]["count"] >= 1, dry
    assert stored_xorbs(hub) == before and lfs_blob_path(hub, oid).exists()
    # Within the default grace period (1 hour) nothing this young goes.
    young = json.loads(hub.cli("gc", "--apply", "--json"))
    assert young["xorbs"]["count"] == 0 and young["lfs_blobs"]["count"] == 0, young
    assert stored_xorbs(hub) == before

    done = gc(hub, "--apply")
    assert done["applied"] is True and done["xorbs"]["count"] >= len(only_gone), done
    after = stored_xorbs(hub)
    assert not (after & only_gone), "the deleted repo's own xorbs are removed"
    assert kept_xorbs <= after, "xorbs a remaining file uses stay"
    assert not lfs_blob_path(hub, oid).exists()
    assert gc(hub)["xorbs"]["count"] == 0, "nothing left to collect"

    # The remaining repository still reads byte-identical through resolve and through Xet.
    want = hashlib.sha256(base).hexdigest()
    r = hub.request("GET", f"/{keep}/resolve/main/base.bin", hub.alice)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == want
    down = xet_download(hub, tmp_path, keep, "base.bin", token=hub.alice)
    assert down["sha256"] == want and down["xet_calls"] == 1, down
