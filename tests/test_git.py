"""git and git-lfs against a running wharf.

Plain `git` (smart HTTP, protocol v0; clients asking for v2 fall back to it) and `git-lfs` as users drive them: clone, push
with LFS, the push rules the server enforces in its pre-receive hook (big blobs outside LFS,
pointers to objects never uploaded, deleting main, foreign refs), access control, shallow and
partial clones, tags and branch deletion through git, gzip-compressed negotiations, and the
API's view of whatever git wrote (and git's view of what the API wrote).

Every git process runs with its own HOME (identity, default branch, git-lfs filters) and
nothing from the machine's or the user's configuration; credentials travel in the remote URL
(any user name, the token as password), and nothing may prompt.
"""
import gzip
import hashlib
import os
import re
import secrets
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from huggingface_hub import hf_hub_download

MIB = 1024 * 1024
LOCK_WARNINGS = ("Locking support detected", "does not support the Git LFS locking API")
# What git prints when the server's hook (or receive-pack) turns a ref update down.
SERVER_REFUSAL = re.compile(r"remote rejected|pre-receive hook declined", re.I)
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


# --- git helpers ------------------------------------------------------------------------------

class Git:
    """Runs git with an isolated HOME below `root`; clones go below `root` too."""

    def __init__(self, hub, root):
        self.hub = hub
        self.root = Path(root)
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GIT_", "GCM_")) and k not in ("SSH_ASKPASS", "XDG_CONFIG_HOME")
               and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"), GIT_TERMINAL_PROMPT="0",
                   GIT_CONFIG_NOSYSTEM="1", LC_ALL="C", LANG="C", NO_PROXY="127.0.0.1,localhost",
                   no_proxy="127.0.0.1,localhost")
        self.env = env
        self.run("config", "--global", "user.name", "Git Tester")
        self.run("config", "--global", "user.email", "git-tester@example.com")
        self.run("config", "--global", "init.defaultBranch", "main")
        self.run("config", "--global", "advice.detachedHead", "false")
        self.run("lfs", "install", "--skip-repo")

    def run(self, *args, cwd=None, check=True, env=None, binary=False, timeout=180):
        full_env = dict(self.env, **(env or {}))
        done = subprocess.run(["git", *map(str, args)], cwd=str(cwd or self.root), env=full_env,
                              capture_output=True, text=not binary, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(map(str, args))} failed ({done.returncode}):\n"
                                 f"{done.stderr if not binary else done.stderr.decode(errors='replace')}")
        return done

    def out(self, *args, cwd=None, **kw):
        return self.run(*args, cwd=cwd, **kw).stdout.strip()

    def url(self, repo_id, token=None, user="git"):
        parts = urlsplit(self.hub.endpoint)
        auth = f"{user}:{token}@" if token else ""
        return f"{parts.scheme}://{auth}{parts.netloc}/{repo_id}"

    def clone(self, repo_id, name, token=None, *args, user="git", check=True):
        dest = self.root / name
        done = self.run("clone", *args, self.url(repo_id, token, user), dest, check=check)
        return dest if check else done

    def commit_files(self, repo, files, message):
        """Writes `files` ({path: bytes}), commits them all and returns the new HEAD."""
        for path, data in files.items():
            target = Path(repo) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.run("add", "--", *files, cwd=repo)
        self.run("commit", "-q", "-m", message, cwd=repo)
        return self.head(repo)

    def head(self, repo, rev="HEAD"):
        return self.out("rev-parse", rev, cwd=repo)

    def push(self, repo, *args, check=False):
        return self.run("push", *args, cwd=repo, check=check)


def refs_of(hub, repo_id):
    """{full ref: target commit} of every ref the API lists (pull requests included)."""
    refs = hub.alice_api.list_repo_refs(repo_id, include_pull_requests=True)
    out = {}
    for ref in [*refs.branches, *refs.tags, *refs.converts, *(refs.pull_requests or [])]:
        out[ref.ref] = ref.target_commit
    return out


def snapshot(hub, repo_id):
    """What a refused push must leave untouched: refs, main's history and main's files."""
    api = hub.alice_api
    tree = sorted((f.path, getattr(f, "blob_id", None)) for f in api.list_repo_tree(repo_id, recursive=True))
    commits = [c.commit_id for c in api.list_repo_commits(repo_id)]
    return {"refs": refs_of(hub, repo_id), "tree": tree, "commits": commits}


def assert_refused(done, *patterns):
    """The push failed, and stderr matches each regex in `patterns` (case-insensitive)."""
    assert done.returncode != 0, f"push was accepted:\n{done.stdout}\n{done.stderr}"
    for p in patterns:
        assert re.search(p, done.stderr, re.I), (p, done.stderr)


def assert_no_lock_warning(stderr):
    for w in LOCK_WARNINGS:
        assert w not in stderr, stderr


def pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture
def git(hub, tmp_path):
    return Git(hub, tmp_path)


@pytest.fixture
def seeded_repo(hub):
    """A public repo of alice's with two API commits (config.json, README.md, notes.txt)."""
    repo = hub.create_repo(hub.alice, prefix="git-seeded")
    hub.commit_ok(repo, [hub.op_file("config.json", b'{"model_type": "bert"}\n'),
                         hub.op_file("README.md", b"# seeded\n")], hub.alice, summary="seed files")
    hub.commit_ok(repo, [hub.op_file("notes.txt", b"second commit\n")], hub.alice, summary="add notes")
    return repo


WEIGHTS_SIZE = 24 * MIB
PUSH_TITLE = "Add model weights through git"
README = b"---\nlicense: apache-2.0\ntags:\n- git-pushed\n---\n# A model pushed with git\n"


@pytest.fixture(scope="module")
def pushed(hub, tmp_path_factory):
    """A new repo, cloned, then a push of 24 MiB of weights through git-lfs plus small files."""
    g = Git(hub, tmp_path_factory.mktemp("git-pushed"))
    repo = hub.create_repo(hub.alice, prefix="git-model")
    clone = g.clone(repo, "clone", hub.alice, user="alice")
    gitattributes = (clone / ".gitattributes").read_text() if (clone / ".gitattributes").exists() else ""
    initial = g.head(clone)
    g.run("lfs", "install", "--local", cwd=clone)
    weights = os.urandom(WEIGHTS_SIZE)
    config = b'{"model_type": "bert", "hidden_size": 32}\n'
    (clone / "model.safetensors").write_bytes(weights)
    (clone / "config.json").write_bytes(config)
    (clone / "README.md").write_bytes(README)
    g.run("add", ".", cwd=clone)
    g.run("commit", "-q", "-m", PUSH_TITLE, "-m", "Weights go through git-lfs.", cwd=clone)
    push = g.push(clone, "origin", "main")
    return {"git": g, "repo": repo, "clone": clone, "gitattributes": gitattributes, "initial": initial,
            "head": g.head(clone), "weights_sha": hashlib.sha256(weights).hexdigest(), "config": config,
            "push": push}


# --- clone and push with LFS ------------------------------------------------------------------

def test_new_repo_clones_with_lfs_gitattributes(pushed):
    attrs = pushed["gitattributes"]
    assert re.search(r"^\*\.safetensors .*filter=lfs", attrs, re.M), attrs
    assert re.search(r"^\*\.bin .*filter=lfs", attrs, re.M), attrs
    assert len(pushed["initial"]) == 40


def test_push_with_lfs_succeeds(pushed, hub):
    push, g, clone = pushed["push"], pushed["git"], pushed["clone"]
    assert push.returncode == 0, push.stderr
    assert "model.safetensors" in g.out("lfs", "ls-files", "-n", cwd=clone).splitlines()
    pointer = g.out("cat-file", "-p", "HEAD:model.safetensors", cwd=clone)
    assert f"oid sha256:{pushed['weights_sha']}" in pointer and f"size {WEIGHTS_SIZE}" in pointer
    assert refs_of(hub, pushed["repo"])["refs/heads/main"] == pushed["head"]
    assert g.out("ls-remote", "origin", "refs/heads/main", cwd=clone).split()[0] == pushed["head"]


def test_api_tree_sees_pushed_lfs_file(pushed, hub):
    entries = {f.path: f for f in hub.alice_api.list_repo_tree(pushed["repo"], expand=True)}
    weights = entries["model.safetensors"]
    assert weights.size == WEIGHTS_SIZE
    assert weights.lfs is not None
    assert weights.lfs.sha256 == pushed["weights_sha"]
    assert weights.lfs.size == WEIGHTS_SIZE
    config = entries["config.json"]
    assert config.lfs is None
    assert config.size == len(pushed["config"])
    assert config.blob_id == hub.git_blob_sha1(pushed["config"])
    assert weights.last_commit is not None and weights.last_commit.oid == pushed["head"]


def test_model_info_files_metadata_sees_pushed_lfs_file(pushed, hub):
    info = hub.anon_api.model_info(pushed["repo"], files_metadata=True)
    assert info.sha == pushed["head"]
    siblings = {s.rfilename: s for s in info.siblings}
    assert {"model.safetensors", "config.json", "README.md", ".gitattributes"} <= set(siblings)
    weights = siblings["model.safetensors"]
    assert weights.size == WEIGHTS_SIZE
    assert weights.lfs is not None and weights.lfs.sha256 == pushed["weights_sha"]
    assert weights.lfs.size == WEIGHTS_SIZE


def test_commits_list_shows_pushed_commit(pushed, hub):
    commits = hub.alice_api.list_repo_commits(pushed["repo"])
    assert commits[0].commit_id == pushed["head"]
    assert commits[0].title == PUSH_TITLE
    assert "Weights go through git-lfs." in commits[0].message
    assert [c.commit_id for c in commits[1:]] == [pushed["initial"]]


def test_model_card_from_pushed_readme(pushed, hub):
    info = hub.anon_api.model_info(pushed["repo"])
    assert info.card_data is not None
    assert info.card_data["license"] == "apache-2.0"
    assert "license:apache-2.0" in info.tags
    assert "git-pushed" in info.tags


def test_push_prints_no_lfs_locking_warning(pushed, git, hub):
    assert_no_lock_warning(pushed["push"].stderr)
    # A second push from a fresh clone (locks verification state unknown again).
    clone = git.clone(pushed["repo"], "again", hub.alice, user="alice")
    git.run("lfs", "install", "--local", cwd=clone)
    git.commit_files(clone, {"extra.bin": os.urandom(2048)}, "more weights")
    done = git.push(clone, "origin", "main")
    assert done.returncode == 0, done.stderr
    assert_no_lock_warning(done.stderr)
    assert "extra.bin" in git.out("lfs", "ls-files", "-n", cwd=clone).splitlines()


def test_fresh_clone_downloads_lfs_content(pushed, git):
    clone = git.clone(pushed["repo"], "fresh")  # anonymous: the repo is public
    assert git.head(clone) == pushed["head"] or git.run("merge-base", "--is-ancestor", pushed["head"], "HEAD",
                                                        cwd=clone, check=False).returncode == 0
    weights = clone / "model.safetensors"
    assert weights.stat().st_size == WEIGHTS_SIZE
    assert sha256_file(weights) == pushed["weights_sha"]
    assert sha256_file(weights) == sha256_file(pushed["clone"] / "model.safetensors")
    assert (clone / "config.json").read_bytes() == pushed["config"]
    # `git lfs ls-files` marks downloaded objects with `*` (a pointer left in place gets `-`).
    assert re.search(r"^[0-9a-f]+ \* model\.safetensors$", git.out("lfs", "ls-files", cwd=clone), re.M)


# --- pushes the server refuses ----------------------------------------------------------------

def test_push_big_non_lfs_blob_refused(git, hub, seeded_repo):
    before = snapshot(hub, seeded_repo)
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    big = secrets.token_hex(11 * MIB // 2 + 4096).encode()  # text, a bit over 11 MiB
    assert len(big) > 11 * MIB
    refused = git.commit_files(clone, {"data/big-table.txt": big}, "big file outside LFS")
    done = git.push(clone, "origin", "main")
    assert_refused(done, SERVER_REFUSAL.pattern, r"git[- ]lfs", r"data/big-table\.txt")
    done = git.push(clone, "origin", "HEAD:refs/heads/big-branch")
    assert_refused(done, SERVER_REFUSAL.pattern, r"git[- ]lfs")
    assert snapshot(hub, seeded_repo) == before
    # The refused objects did not land in the repository: the server (which lets clients
    # want any object it has) cannot hand the refused commit out.
    probe = git.clone(seeded_repo, "probe")
    done = git.run("fetch", "origin", refused, cwd=probe, check=False)
    assert done.returncode != 0, done.stderr
    assert git.run("cat-file", "-e", refused, cwd=probe, check=False).returncode != 0


def test_push_pointer_to_never_uploaded_lfs_object_refused(git, hub, seeded_repo):
    before = snapshot(hub, seeded_repo)
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    oid = secrets.token_hex(32)
    # notes-pointer.txt is not LFS-tracked: the pointer text is committed as is.
    git.commit_files(clone, {"notes-pointer.txt": LFS_POINTER.format(oid=oid, size=4242).encode()}, "dangling pointer")
    assert git.out("check-attr", "filter", "notes-pointer.txt", cwd=clone).endswith("unspecified")
    # --no-verify skips git-lfs's own pre-push hook: the server must catch it.
    done = git.push(clone, "--no-verify", "origin", "main")
    assert_refused(done, SERVER_REFUSAL.pattern, oid, r"notes-pointer\.txt")
    assert snapshot(hub, seeded_repo) == before


def test_push_pointer_needs_object_uploaded_to_this_repo(git, hub, seeded_repo):
    data = os.urandom(50_000)
    oid = hub.lfs_upload(seeded_repo, data, hub.alice)
    other = hub.create_repo(hub.alice, prefix="git-other")
    other_before = snapshot(hub, other)
    pointer = LFS_POINTER.format(oid=oid, size=len(data)).encode()

    # The object exists on the server, but was uploaded to another repo.
    clone_other = git.clone(other, "other", hub.alice, user="alice")
    git.commit_files(clone_other, {"borrowed.bin": pointer}, "pointer to someone else's object")
    assert_refused(git.push(clone_other, "--no-verify", "origin", "main"), SERVER_REFUSAL.pattern, oid)
    assert snapshot(hub, other) == other_before

    # Right repo, wrong size.
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    before = snapshot(hub, seeded_repo)
    git.commit_files(clone, {"weights.bin": LFS_POINTER.format(oid=oid, size=len(data) + 1).encode()}, "bad size")
    assert_refused(git.push(clone, "--no-verify", "origin", "main"), SERVER_REFUSAL.pattern, oid)
    assert snapshot(hub, seeded_repo) == before

    # Right repo, right size: accepted, and the API sees an LFS file.
    (clone / "weights.bin").write_bytes(pointer)
    git.run("add", "weights.bin", cwd=clone)
    git.run("commit", "-q", "--amend", "-m", "good pointer", cwd=clone)
    done = git.push(clone, "--no-verify", "origin", "main")
    assert done.returncode == 0, done.stderr
    entries = {f.path: f for f in hub.alice_api.list_repo_tree(seeded_repo, expand=True)}
    assert entries["weights.bin"].lfs is not None and entries["weights.bin"].lfs.sha256 == oid
    assert entries["weights.bin"].size == len(data)
    r = requests.get(f"{hub.endpoint}/{seeded_repo}/resolve/main/weights.bin", timeout=60)
    assert r.status_code == 200 and r.content == data
    assert r.headers["X-Repo-Commit"] == git.head(clone)


def test_push_without_write_access_refused(git, hub, seeded_repo):
    before = snapshot(hub, seeded_repo)
    clone = git.clone(seeded_repo, "clone", hub.bob, user="bob")  # public: bob may read
    git.commit_files(clone, {"bob.txt": b"bob was here\n"}, "bob's edit")
    done = git.push(clone, "origin", "main")
    assert_refused(done, r"403")
    # alice's read-only token cannot push either.
    done = git.push(clone, git.url(seeded_repo, hub.alice_read, "alice"), "main")
    assert_refused(done, r"403")
    assert snapshot(hub, seeded_repo) == before


def test_anonymous_push_refused(git, hub, seeded_repo):
    before = snapshot(hub, seeded_repo)
    clone = git.clone(seeded_repo, "clone")
    git.commit_files(clone, {"anon.txt": b"anonymous\n"}, "anonymous edit")
    done = git.push(clone, "origin", "main")
    assert_refused(done, r"could not read Username|Authentication failed|401")
    assert snapshot(hub, seeded_repo) == before


def test_push_with_bad_token_refused(git, hub, seeded_repo):
    before = snapshot(hub, seeded_repo)
    clone = git.clone(seeded_repo, "clone")
    git.commit_files(clone, {"x.txt": b"x\n"}, "edit")
    done = git.push(clone, git.url(seeded_repo, "hf_" + "x" * 34, "alice"), "main")
    assert_refused(done, r"401|Authentication failed")
    assert snapshot(hub, seeded_repo) == before


def test_push_outside_branches_tags_and_prs_refused(git, hub, seeded_repo):
    before = snapshot(hub, seeded_repo)
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    for target in ("HEAD:refs/notes/commits", "HEAD:refs/custom/thing"):
        assert_refused(git.push(clone, "origin", target), SERVER_REFUSAL.pattern)
    assert snapshot(hub, seeded_repo) == before


# --- clone variants ---------------------------------------------------------------------------

def test_shallow_clone_then_unshallow(git, hub, seeded_repo):
    total = len(hub.alice_api.list_repo_commits(seeded_repo))
    assert total == 3
    clone = git.clone(seeded_repo, "shallow", None, "--depth", "1")
    assert git.out("rev-parse", "--is-shallow-repository", cwd=clone) == "true"
    assert git.out("rev-list", "--count", "HEAD", cwd=clone) == "1"
    assert git.head(clone) == hub.head_sha(seeded_repo)
    assert (clone / "notes.txt").read_bytes() == b"second commit\n"
    git.run("fetch", "-q", "--unshallow", cwd=clone)
    assert git.out("rev-parse", "--is-shallow-repository", cwd=clone) == "false"
    assert git.out("rev-list", "--count", "HEAD", cwd=clone) == str(total)
    assert git.out("log", "--format=%s", cwd=clone).splitlines() == [
        c.title for c in hub.alice_api.list_repo_commits(seeded_repo)]


def test_partial_clone_fetches_blobs_lazily(git, hub, seeded_repo):
    clone = git.clone(seeded_repo, "partial", None, "--filter=blob:none", "--no-checkout")
    assert git.out("config", "remote.origin.promisor", cwd=clone) == "true"
    missing = [l for l in git.out("rev-list", "--objects", "--all", "--missing=print", cwd=clone).splitlines()
               if l.startswith("?")]
    assert missing, "the server ignored --filter=blob:none (no blob is missing)"
    assert git.out("cat-file", "-p", "HEAD:config.json", cwd=clone) == '{"model_type": "bert"}'
    git.run("checkout", "-q", "main", cwd=clone)
    assert (clone / "notes.txt").read_bytes() == b"second commit\n"


@pytest.mark.parametrize("version", ["0", "2"])
def test_clone_with_protocol_version(git, hub, seeded_repo, version, tmp_path):
    trace = tmp_path / "packet.trace"
    dest = git.root / f"v{version}"
    git.run("-c", f"protocol.version={version}", "clone", git.url(seeded_repo), dest,
            env={"GIT_TRACE_PACKET": str(trace)})
    assert git.head(dest) == hub.head_sha(seeded_repo)
    assert (dest / "config.json").read_bytes() == b'{"model_type": "bert"}\n'
    # v2 is never offered (its fetch would serve unreachable objects): a client asking for it
    # falls back to v0 by itself.
    spoke_v2 = re.search(r"git< version 2$", trace.read_text(errors="replace"), re.M) is not None
    assert not spoke_v2
    # Fetch after a new API commit, same protocol.
    new = hub.commit_ok(seeded_repo, [hub.op_file("later.txt", b"later\n")], hub.alice)
    git.run("-c", f"protocol.version={version}", "pull", "-q", cwd=dest)
    assert git.head(dest) == new and (dest / "later.txt").read_bytes() == b"later\n"


# --- refs through git -------------------------------------------------------------------------

def test_pushed_tags_visible_in_refs(git, hub, seeded_repo):
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    first = git.head(clone)
    git.run("tag", "v1", cwd=clone)
    done = git.push(clone, "origin", "v1")
    assert done.returncode == 0, done.stderr
    second = git.commit_files(clone, {"CHANGELOG.md": b"v2\n"}, "prepare v2")
    git.run("tag", "-a", "v2", "-m", "release two", cwd=clone)
    tag_object = git.head(clone, "v2")
    assert tag_object != second  # an annotated tag is an object of its own
    done = git.push(clone, "origin", "main", "v2")
    assert done.returncode == 0, done.stderr
    refs = refs_of(hub, seeded_repo)
    assert refs["refs/tags/v1"] == first
    assert refs["refs/tags/v2"] == second  # peeled to the commit
    assert refs["refs/heads/main"] == second
    tags = {t.name: t for t in hub.alice_api.list_repo_refs(seeded_repo).tags}
    assert set(tags) == {"v1", "v2"}
    # Revisions by tag name resolve to the tagged commits.
    assert hub.head_sha(seeded_repo, revision="v1") == first
    assert hub.head_sha(seeded_repo, revision="v2") == second
    # git sees the same thing again: the annotated tag object and its peeled commit.
    remote = dict(reversed(l.split("\t")) for l in git.out("ls-remote", "--tags", "origin", cwd=clone).splitlines())
    assert remote["refs/tags/v2"] == tag_object and remote["refs/tags/v2^{}"] == second
    assert remote["refs/tags/v1"] == first


def test_push_delete_branch(git, hub, seeded_repo):
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    tip = git.commit_files(clone, {"feature.txt": b"feature\n"}, "feature work")
    git.run("reset", "-q", "--hard", "HEAD~1", cwd=clone)
    done = git.push(clone, "origin", f"{tip}:refs/heads/feature")
    assert done.returncode == 0, done.stderr
    assert refs_of(hub, seeded_repo)["refs/heads/feature"] == tip
    main_before = refs_of(hub, seeded_repo)["refs/heads/main"]
    done = git.push(clone, "origin", ":feature")
    assert done.returncode == 0, done.stderr
    refs = refs_of(hub, seeded_repo)
    assert "refs/heads/feature" not in refs
    assert refs["refs/heads/main"] == main_before
    assert git.out("ls-remote", "--heads", "origin", cwd=clone).split() == [main_before, "refs/heads/main"]


def test_push_delete_main_refused(git, hub, seeded_repo):
    before = snapshot(hub, seeded_repo)
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    done = git.push(clone, "origin", ":main")
    assert_refused(done, SERVER_REFUSAL.pattern, r"main")
    assert snapshot(hub, seeded_repo) == before
    assert hub.anon_api.model_info(seeded_repo).sha == before["refs"]["refs/heads/main"]


def test_forced_push_accepted(git, hub, seeded_repo):
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    old = git.commit_files(clone, {"doomed.txt": b"will be rewritten\n"}, "commit to be replaced")
    assert git.push(clone, "origin", "main").returncode == 0
    assert hub.head_sha(seeded_repo) == old
    git.run("reset", "-q", "--hard", "HEAD~1", cwd=clone)
    new = git.commit_files(clone, {"kept.txt": b"history rewritten\n"}, "rewritten history")
    done = git.push(clone, "origin", "main")
    assert done.returncode != 0  # git itself refuses a non-fast-forward without --force
    done = git.push(clone, "--force", "origin", "main")
    assert done.returncode == 0, done.stderr
    assert refs_of(hub, seeded_repo)["refs/heads/main"] == new
    commits = [c.commit_id for c in hub.alice_api.list_repo_commits(seeded_repo)]
    assert commits[0] == new and old not in commits
    files = {f.path for f in hub.alice_api.list_repo_tree(seeded_repo)}
    assert "kept.txt" in files and "doomed.txt" not in files
    assert hub.anon_api.model_info(seeded_repo).sha == new


# --- git and the API see each other's commits -------------------------------------------------

def test_api_commit_then_git_pull(git, hub, seeded_repo):
    clone = git.clone(seeded_repo, "clone")
    sha = hub.commit_ok(seeded_repo, [hub.op_file("from-api/params.json", b'{"lr": 0.1}\n')], hub.alice,
                        summary="commit through the API")
    git.run("pull", "-q", cwd=clone)
    assert git.head(clone) == sha
    assert (clone / "from-api" / "params.json").read_bytes() == b'{"lr": 0.1}\n'
    assert git.out("log", "-1", "--format=%s", cwd=clone) == "commit through the API"


def test_git_push_then_hf_hub_download(git, hub, seeded_repo, tmp_path):
    clone = git.clone(seeded_repo, "clone", hub.alice, user="alice")
    content = b"pushed with git " + secrets.token_hex(8).encode() + b"\n"
    sha = git.commit_files(clone, {"sub/pushed.txt": content}, "push a file")
    done = git.push(clone, "origin", "main")
    assert done.returncode == 0, done.stderr
    path = hf_hub_download(seeded_repo, "sub/pushed.txt", revision=sha, cache_dir=tmp_path / "cache", token=False,
                           endpoint=hub.endpoint)
    assert Path(path).read_bytes() == content
    assert Path(path).parent.name == "sub" and Path(path).parent.parent.name == sha
    for rev in ("main", sha):
        r = requests.get(f"{hub.endpoint}/{seeded_repo}/resolve/{rev}/sub/pushed.txt", timeout=60)
        assert r.status_code == 200 and r.content == content
        assert r.headers["X-Repo-Commit"] == sha
        assert r.headers["ETag"].strip('"') == hub.git_blob_sha1(content)
        h = requests.head(f"{hub.endpoint}/{seeded_repo}/resolve/{rev}/sub/pushed.txt", timeout=60)
        assert h.status_code == 200 and h.headers["X-Repo-Commit"] == sha


# --- private repos ----------------------------------------------------------------------------

def test_private_repo_clone_access(git, hub):
    repo = hub.create_repo(hub.alice, private=True, prefix="git-private")
    weights = os.urandom(300_000)
    oid = hub.lfs_upload(repo, weights, hub.alice)
    sha = hub.commit_ok(repo, [hub.op_file("config.json", b'{"secret": true}\n'),
                               hub.op_lfs("model.safetensors", oid, len(weights))], hub.alice)

    done = git.clone(repo, "anon", check=False)
    assert done.returncode != 0
    assert re.search(r"could not read Username|Authentication failed|401", done.stderr, re.I), done.stderr
    assert not (git.root / "anon" / "config.json").exists()

    done = git.clone(repo, "bob", hub.bob, user="bob", check=False)
    assert done.returncode != 0
    assert re.search(r"not found|403|404", done.stderr, re.I), done.stderr
    assert not (git.root / "bob" / "config.json").exists()

    for name, token in (("alice", hub.alice), ("alice-read", hub.alice_read)):
        clone = git.clone(repo, name, token, user="alice")
        assert git.head(clone) == sha
        assert (clone / "config.json").read_bytes() == b'{"secret": true}\n'
        assert (clone / "model.safetensors").read_bytes() == weights  # LFS download with URL credentials


# --- gzip-compressed negotiation --------------------------------------------------------------

def _upload_pack_request(want):
    body = pkt(f"want {want} ofs-delta agent=wharf-tests\n".encode()) + b"0000" + pkt(b"done\n")
    return body


def test_gzip_upload_pack_request_by_hand(git, hub, seeded_repo):
    sha = hub.head_sha(seeded_repo)
    body = _upload_pack_request(sha)
    url = f"{hub.endpoint}/{seeded_repo}.git/git-upload-pack"
    headers = {"Content-Type": "application/x-git-upload-pack-request",
               "Accept": "application/x-git-upload-pack-result"}
    results = []
    for encoding in (None, "gzip"):
        h = dict(headers)
        data = body
        if encoding:
            h["Content-Encoding"] = encoding
            data = gzip.compress(body)
        r = requests.post(url, data=data, headers=h, timeout=60)
        assert r.status_code == 200, (encoding, r.status_code, r.text[:300])
        assert r.headers["Content-Type"] == "application/x-git-upload-pack-result"
        assert r.content.startswith(b"0008NAK\n"), (encoding, r.content[:100])
        pack = r.content[len(b"0008NAK\n"):]
        assert pack.startswith(b"PACK"), (encoding, r.content[:100])
        results.append(pack)
    # The pack from the gzip request is a valid pack holding the wanted commit.
    bare = git.root / "bare.git"
    git.run("init", "-q", "--bare", bare)
    done = subprocess.run(["git", "--git-dir", str(bare), "index-pack", "--stdin", "--fix-thin"],
                          input=results[1], capture_output=True, env=git.env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert git.out("--git-dir", bare, "cat-file", "-t", sha) == "commit"
    assert git.out("--git-dir", bare, "cat-file", "-p", f"{sha}:notes.txt") == "second commit"


def test_gzip_negotiation_from_git_with_many_refs(git, hub, tmp_path):
    repo = hub.create_repo(hub.alice, prefix="git-many-refs")
    clone = git.clone(repo, "writer", hub.alice, user="alice")
    count = 60
    for i in range(count):
        git.run("commit", "-q", "--allow-empty", "-m", f"step {i}", cwd=clone)
        git.run("tag", f"t{i:03d}", cwd=clone)
    done = git.push(clone, "origin", "main", "--tags")
    assert done.returncode == 0, done.stderr
    refs = refs_of(hub, repo)
    assert len([r for r in refs if r.startswith("refs/tags/")]) == count
    # Many wants make git gzip its upload-pack request (protocol v0 and v2 alike).
    for version in ("0", "2"):
        trace = tmp_path / f"curl-v{version}.trace"
        dest = git.root / f"reader-v{version}"
        git.run("-c", f"protocol.version={version}", "clone", "-q", git.url(repo), dest,
                env={"GIT_TRACE_CURL": str(trace), "GIT_TRACE_CURL_NO_DATA": "1"})
        sent = trace.read_text(errors="replace")
        assert re.search(r"Send header: Content-Encoding: gzip", sent, re.I), f"git sent no gzip body (v{version})"
        assert git.head(dest) == refs["refs/heads/main"]
        local_tags = git.out("tag", "--list", cwd=dest).split()
        assert len(local_tags) == count
        assert git.head(dest, "t000") == refs["refs/tags/t000"]


# --- other repo types -------------------------------------------------------------------------

def test_dataset_repo_clone_and_push(git, hub):
    repo = hub.create_repo(hub.alice, repo_type="dataset", prefix="git-dataset")
    clone = git.clone(f"datasets/{repo}", "dataset", hub.alice, user="alice")
    git.run("lfs", "install", "--local", cwd=clone)
    rows = b"text,label\n" + b"".join(b"row %d,%d\n" % (i, i % 2) for i in range(100))
    sha = git.commit_files(clone, {"data/train.csv": rows}, "add training data")
    done = git.push(clone, "origin", "main")
    assert done.returncode == 0, done.stderr
    assert hub.alice_api.dataset_info(repo).sha == sha
    files = {f.path: f for f in hub.alice_api.list_repo_tree(repo, repo_type="dataset", recursive=True)}
    assert files["data/train.csv"].size == len(rows)
    # The same name as a model repo does not exist.
    done = git.clone(repo, "as-model", hub.alice, user="alice", check=False)
    assert done.returncode != 0
