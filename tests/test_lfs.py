"""The LFS batch API, signed transfer URLs, and serving LFS files (headers, ranges)."""
import os
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import pytest
import requests


@pytest.fixture(scope="module")
def repo(hub):
    return hub.create_repo(hub.alice, prefix="lfs")


def _batch_upload_action(hub, repo, data, token=None):
    oid = hub.sha256(data)
    r = hub.lfs_batch(repo, [(oid, len(data))], token or hub.alice)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/vnd.git-lfs+json")
    body = r.json()
    assert body["transfer"] == "basic"
    obj = body["objects"][0]
    assert obj["oid"] == oid and obj["size"] == len(data)
    return oid, obj["actions"]


def _verify(hub, actions, oid, size, token=None):
    return requests.post(actions["verify"]["href"], json={"oid": oid, "size": size}, timeout=30,
                         headers={"Authorization": f"Bearer {token or hub.alice}",
                                  "Content-Type": "application/vnd.git-lfs+json"})


def _with_query(url, **changes):
    u = urlparse(url)
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    q.update(changes)
    return urlunparse(u._replace(query=urlencode(q)))


def test_put_wrong_bytes_is_refused_and_not_stored(hub, repo):
    data = os.urandom(4096)
    oid, actions = _batch_upload_action(hub, repo, data)
    href = actions["upload"]["href"]
    # Same size, different bytes.
    r = requests.put(href, data=os.urandom(4096), timeout=30)
    hub.assert_error(r, 400)
    # Shorter and longer than announced.
    hub.assert_error(requests.put(href, data=data[:100], timeout=30), 400)
    hub.assert_error(requests.put(href, data=data + b"extra", timeout=30), 400)
    # Nothing was stored: verify fails, the batch still asks for an upload, commits are refused.
    v = _verify(hub, actions, oid, len(data))
    assert 400 <= v.status_code < 500, (v.status_code, v.text)
    _, again = _batch_upload_action(hub, repo, data)
    assert "upload" in again
    r = hub.commit(repo, [hub.op_lfs("wrong.bin", oid, len(data))], hub.alice)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers.get("X-Error-Message")
    assert "wrong.bin" not in hub.alice_api.list_repo_files(repo)
    assert not list(hub.data_dir.glob(f"lfs/objects/**/{oid}"))


def test_put_with_tampered_signature_is_403(hub, repo):
    data = os.urandom(1000)
    oid, actions = _batch_upload_action(hub, repo, data)
    href = actions["upload"]["href"]
    sig = parse_qs(urlparse(href).query)["sig"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
    for bad in (_with_query(href, sig=flipped), _with_query(href, sig=""), _with_query(href, sig="zz"),
                _with_query(href, expires="9999999999"), _with_query(href, expires="1"),
                href.split("?")[0]):
        r = requests.put(bad, data=data, timeout=30)
        hub.assert_error(r, 403)
    # The URL is bound to its object, size and repository. Today's URLs carry them in the path
    # (/api/lfs/upload/{repo id}/{oid}/{size}); swapping any of them must break the signature.
    other = os.urandom(1000)
    assert oid in href
    r = requests.put(href.replace(oid, hub.sha256(other)), data=other, timeout=30)
    hub.assert_error(r, 403)
    if f"/{oid}/{len(data)}?" in href:
        r = requests.put(href.replace(f"/{oid}/{len(data)}?", f"/{oid}/999?"), data=data[:999], timeout=30)
        hub.assert_error(r, 403)
    elsewhere = hub.create_repo(hub.alice, prefix="lfs-elsewhere")
    here_id = int(hub.request("GET", f"/api/models/{repo}", hub.alice).json()["_id"], 16)
    other_id = int(hub.request("GET", f"/api/models/{elsewhere}", hub.alice).json()["_id"], 16)
    if f"/{here_id}/{oid}/" in href:
        r = requests.put(href.replace(f"/{here_id}/{oid}/", f"/{other_id}/{oid}/"), data=data, timeout=30)
        hub.assert_error(r, 403)
    assert "upload" in _batch_upload_action(hub, repo, data)[1], "a refused PUT stored the object"


def test_upload_verify_commit_and_download(hub, repo):
    data = os.urandom(300_000)
    oid, actions = _batch_upload_action(hub, repo, data)
    assert set(actions) >= {"upload", "verify"}
    # No credentials on the PUT, as the Python client does.
    put = requests.put(actions["upload"]["href"], data=data, timeout=30)
    assert put.status_code == 200, put.text
    assert _verify(hub, actions, oid, len(data)).status_code == 200
    # A second batch knows the object: no actions.
    r = hub.lfs_batch(repo, [(oid, len(data))], hub.alice)
    assert "actions" not in r.json()["objects"][0] or not r.json()["objects"][0]["actions"]
    commit = hub.commit_ok(repo, [hub.op_lfs("weights/model.bin", oid, len(data))], hub.alice)

    for method in ("HEAD", "GET"):
        r = hub.request(method, f"/{repo}/resolve/main/weights/model.bin")
        assert r.status_code == 200, r.text
        assert r.headers["X-Repo-Commit"] == commit
        assert r.headers["X-Linked-Etag"] == f'"{oid}"'
        assert r.headers["X-Linked-Size"] == str(len(data))
        assert r.headers["ETag"].strip('"')
        assert r.headers["Content-Length"] == str(len(data))
        assert r.headers.get("Accept-Ranges") == "bytes"
        if method == "GET":
            assert r.content == data
    # By commit sha too, and through the client.
    assert hub.request("GET", f"/{repo}/resolve/{commit}/weights/model.bin").content == data
    info = hub.anon_api.model_info(repo, files_metadata=True)
    sib = {s.rfilename: s for s in info.siblings}["weights/model.bin"]
    assert sib.size == len(data) and sib.lfs.sha256 == oid
    entry = [e for e in hub.anon_api.list_repo_tree(repo, recursive=True) if e.path == "weights/model.bin"][0]
    assert entry.lfs.sha256 == oid and entry.size == len(data)
    # git-lfs style download through the batch API.
    r = hub.lfs_batch(repo, [(oid, len(data))], None, operation="download")
    assert r.status_code == 200
    href = r.json()["objects"][0]["actions"]["download"]["href"]
    assert requests.get(href, timeout=30).content == data


def test_ranges(hub, repo):
    data = os.urandom(10_000)
    oid = hub.lfs_upload(repo, data, hub.alice)
    hub.commit_ok(repo, [hub.op_lfs("range.bin", oid, len(data)), hub.op_file("small.txt", b"0123456789")], hub.alice)
    for path, content in (("range.bin", data), ("small.txt", b"0123456789")):
        n = len(content)
        url = f"/{repo}/resolve/main/{path}"
        r = hub.request("GET", url, headers={"Range": "bytes=2-5"})
        assert r.status_code == 206 and r.content == content[2:6]
        assert r.headers["Content-Range"] == f"bytes 2-5/{n}"
        assert r.headers["Content-Length"] == "4"
        r = hub.request("GET", url, headers={"Range": "bytes=7-"})
        assert r.status_code == 206 and r.content == content[7:]
        assert r.headers["Content-Range"] == f"bytes 7-{n - 1}/{n}"
        r = hub.request("GET", url, headers={"Range": "bytes=-3"})
        assert r.status_code == 206 and r.content == content[-3:]
        r = hub.request("GET", url, headers={"Range": f"bytes=5-{n + 100}"})
        assert r.status_code == 206 and r.content == content[5:]
        for bad in (f"bytes={n}-", f"bytes={n + 5}-{n + 10}", "bytes=5-2", "bytes=abc", "bytes=-0"):
            r = hub.request("GET", url, headers={"Range": bad})
            hub.assert_error(r, 416)
            assert r.headers.get("Content-Range") == f"bytes */{n}", bad
        r = hub.request("HEAD", url, headers={"Range": "bytes=0-0"})
        assert r.status_code == 206 and r.headers["Content-Range"] == f"bytes 0-0/{n}"


def test_object_of_another_repo_cannot_be_committed(hub, repo):
    other = hub.create_repo(hub.bob, prefix="bob-lfs")
    data = os.urandom(2048)
    oid = hub.lfs_upload(other, data, hub.bob)
    hub.commit_ok(other, [hub.op_lfs("bob.bin", oid, len(data))], hub.bob)
    for size in (len(data), None):
        r = hub.commit(repo, [hub.op_lfs("stolen.bin", oid, size)], hub.alice)
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert r.headers.get("X-Error-Message")
    assert "stolen.bin" not in hub.alice_api.list_repo_files(repo)
    # Verify in this repo does not accept it either, and batch download does not hand it out.
    v = requests.post(f"{hub.endpoint}/{repo}.git/info/lfs/objects/verify", json={"oid": oid, "size": len(data)},
                      headers={"Authorization": f"Bearer {hub.alice}"}, timeout=30)
    assert v.status_code != 200
    r = hub.lfs_batch(repo, [(oid, len(data))], hub.alice, operation="download")
    obj = r.json()["objects"][0]
    assert "download" not in (obj.get("actions") or {}) and obj["error"]["code"] == 404
    # Uploading the real bytes to this repo makes it usable here.
    hub.lfs_upload(repo, data, hub.alice)
    hub.commit_ok(repo, [hub.op_lfs("mine.bin", oid, len(data))], hub.alice)
    assert hub.request("GET", f"/{repo}/resolve/main/mine.bin").content == data


def test_lfs_commit_with_wrong_size_is_refused(hub, repo):
    data = os.urandom(512)
    oid = hub.lfs_upload(repo, data, hub.alice)
    r = hub.commit(repo, [hub.op_lfs("size.bin", oid, len(data) + 1)], hub.alice)
    hub.assert_error(r, 400)


def test_batch_object_errors(hub, repo):
    r = hub.lfs_batch(repo, [("not-a-sha", 3), ("a" * 64, -1)], hub.alice)
    assert r.status_code == 200
    for obj in r.json()["objects"]:
        assert obj["error"]["code"] == 422 and obj["error"]["message"]
        assert "actions" not in obj or not obj["actions"]
    r = hub.lfs_batch(repo, [("f" * 64, 10)], hub.alice, operation="download")
    obj = r.json()["objects"][0]
    assert obj["error"]["code"] == 404


def test_upload_through_client(hub, repo):
    data = os.urandom(64 * 1024)
    hub.alice_api.upload_file(path_or_fileobj=data, path_in_repo="client/model.safetensors", repo_id=repo)
    info = hub.alice_api.model_info(repo, files_metadata=True)
    sib = {s.rfilename: s for s in info.siblings}["client/model.safetensors"]
    assert sib.lfs is not None and sib.lfs.sha256 == hub.sha256(data)
    r = hub.request("GET", f"/{repo}/resolve/main/client/model.safetensors")
    assert r.content == data and r.headers["X-Linked-Etag"] == f'"{hub.sha256(data)}"'
