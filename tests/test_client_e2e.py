"""The official `huggingface_hub` client end to end."""
import hashlib
import os
from pathlib import Path

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    hf_hub_download,
    snapshot_download,
)


def _tree(root):
    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and ".cache" not in p.relative_to(root).parts:
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_upload_folder_snapshot_roundtrip(hub, tmp_path):
    src = tmp_path / "src"
    files = {
        "README.md": b"---\nlicense: mit\n---\n# round trip\n",
        "config.json": b'{"model_type": "bert"}',
        "nested/deeper/notes.txt": b"deep text\n",
        "nested/deeper/deepest/empty.txt": b"",
        "nested/weights.bin": os.urandom(200_000),  # LFS by .gitattributes
        "nested/binary.dat": bytes(range(256)) * 10,  # LFS because it looks binary
        "unicode/\u00e9t\u00e9.txt": "caf\u00e9".encode(),
        "with space/file name.txt": b"spaces",
    }
    for name, data in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    repo = hub.create_repo(hub.alice, prefix="roundtrip")
    info = hub.alice_api.upload_folder(folder_path=str(src), repo_id=repo, commit_message="round trip")
    assert info.commit_url == f"{hub.endpoint}/{repo}/commit/{info.oid}"
    assert set(hub.alice_api.list_repo_files(repo)) == set(files) | {".gitattributes"}
    siblings = {s.rfilename: s for s in hub.alice_api.model_info(repo, files_metadata=True).siblings}
    assert siblings["nested/weights.bin"].lfs is not None
    assert siblings["nested/binary.dat"].lfs is not None
    assert siblings["config.json"].lfs is None
    assert siblings["nested/deeper/deepest/empty.txt"].size == 0

    snap = snapshot_download(repo, cache_dir=str(tmp_path / "cache"))
    assert info.oid in snap
    got = _tree(snap)
    want = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
    assert {k: got[k] for k in want} == want
    assert ".gitattributes" in got

    local = snapshot_download(repo, local_dir=str(tmp_path / "local"), allow_patterns=["nested/*"], token=False)
    assert set(_tree(local)) == {k for k in files if k.startswith("nested/")}

    # Anonymous single-file download, pinned by sha.
    p = hf_hub_download(repo, "nested/weights.bin", revision=info.oid, token=False,
                        cache_dir=str(tmp_path / "cache2"))
    assert Path(p).read_bytes() == files["nested/weights.bin"]

    # Re-uploading the same folder makes no new commit content.
    again = hub.alice_api.upload_folder(folder_path=str(src), repo_id=repo)
    assert set(hub.alice_api.list_repo_files(repo, revision=again.oid)) == set(files) | {".gitattributes"}


def test_commit_operation_copy_of_lfs_file(hub, tmp_path):
    repo = hub.create_repo(hub.alice, prefix="copy")
    weights = os.urandom(150_000)
    hub.alice_api.create_commit(repo, operations=[
        CommitOperationAdd("model.safetensors", weights),
        CommitOperationAdd("small.txt", b"small"),
    ], commit_message="add")
    hub.alice_api.create_commit(repo, operations=[
        CommitOperationCopy("model.safetensors", "copies/model-copy.safetensors"),
        CommitOperationCopy("small.txt", "copies/small-copy.txt"),
        CommitOperationDelete("small.txt"),
    ], commit_message="copy")
    siblings = {s.rfilename: s for s in hub.alice_api.model_info(repo, files_metadata=True).siblings}
    assert siblings["copies/model-copy.safetensors"].lfs.sha256 == hashlib.sha256(weights).hexdigest()
    assert "small.txt" not in siblings
    p = hf_hub_download(repo, "copies/model-copy.safetensors", cache_dir=str(tmp_path / "c"))
    assert Path(p).read_bytes() == weights
    p = hf_hub_download(repo, "copies/small-copy.txt", cache_dir=str(tmp_path / "c"))
    assert Path(p).read_bytes() == b"small"
    # Copy from an older revision.
    first = hub.alice_api.list_repo_commits(repo)[-2].commit_id
    hub.alice_api.create_commit(repo, operations=[CommitOperationCopy("small.txt", "restored.txt", src_revision=first)],
                                commit_message="restore")
    assert hub.request("GET", f"/{repo}/resolve/main/restored.txt").content == b"small"


def test_private_org_repo_via_client(hub, tmp_path):
    repo = f"acme/{hub.unique('org-private')}"
    hub.alice_api.create_repo(repo, private=True)
    hub.alice_api.upload_file(path_or_fileobj=b"org secret", path_in_repo="s.txt", repo_id=repo)
    assert hub.alice_api.model_info(repo).private
    p = hf_hub_download(repo, "s.txt", token=hub.alice_read, cache_dir=str(tmp_path / "c"))
    assert Path(p).read_bytes() == b"org secret"
    hub.alice_api.update_repo_settings(repo, private=False)
    assert hub.anon_api.model_info(repo).private is False
    hub.alice_api.delete_repo(repo)
    assert not hub.alice_api.repo_exists(repo)


def test_preupload_honours_gitignore(hub):
    # "`.gitignore` rules are enforced server-side" (huggingface_hub): preupload answers
    # shouldIgnore from the gitIgnore content sent with the request, else the repo's .gitignore.
    repo = hub.create_repo(hub.alice, prefix="gitignore")
    files = [{"path": p, "sample": "eA==", "size": 1} for p in ("debug.log", "logs/run.log", "keep.txt", "secret/key.txt")]
    r = hub.request("POST", f"/api/models/{repo}/preupload/main", hub.alice,
                    json={"files": files, "gitIgnore": "*.log\nsecret/\n"})
    assert r.status_code == 200, r.text
    ignored = {f["path"]: f["shouldIgnore"] for f in r.json()["files"]}
    assert ignored == {"debug.log": True, "logs/run.log": True, "keep.txt": False, "secret/key.txt": True}, ignored
    # Without gitIgnore in the request, the .gitignore committed at the revision applies.
    hub.commit_ok(repo, [hub.op_file(".gitignore", b"*.tmp\n")], hub.alice)
    r = hub.request("POST", f"/api/models/{repo}/preupload/main", hub.alice,
                    json={"files": [{"path": "x.tmp", "sample": "eA==", "size": 1},
                                    {"path": "x.txt", "sample": "eA==", "size": 1}]})
    assert {f["path"]: f["shouldIgnore"] for f in r.json()["files"]} == {"x.tmp": True, "x.txt": False}


def test_upload_folder_skips_gitignored_files(hub, tmp_path):
    src = tmp_path / "with-gitignore"
    (src / "logs").mkdir(parents=True)
    (src / ".gitignore").write_text("*.log\n")
    (src / "model.txt").write_text("model")
    (src / "logs" / "train.log").write_text("noise")
    repo = hub.create_repo(hub.alice, prefix="gitignore-folder")
    hub.alice_api.upload_folder(folder_path=str(src), repo_id=repo)
    files = set(hub.alice_api.list_repo_files(repo))
    assert {".gitignore", "model.txt"} <= files
    assert "logs/train.log" not in files, files
