"""Crash consistency: a real server SIGKILLed at random moments while several clients write.

One round: a fresh server on its own data folder (first round) takes `WHARF_CRASH_OPS` mixed
operations (default 50) from four threads: API commits (`HfApi.create_commit`), LFS uploads
(`HfApi.upload_file` of binary files), git pushes with git + git-lfs, repository creates and
deletes, branch and tag creates and deletes, and commits to branches. Meanwhile the server is
killed with SIGKILL `WHARF_CRASH_KILLS` times (default 5) at random moments and restarted each
time. Every operation the server acknowledged (a 2xx answer, a `git push` that exited 0) goes
into a ledger. After the round, with the server restarted:
  - every acknowledged commit is reachable from the branch it was made on, unless a later
    operation deleted that branch or repository (only an attempted delete excuses an absence);
  - every acknowledged file (LFS ones included) downloads at its commit with the right sha256;
  - every acknowledged tag points at its commit; every acknowledged repository exists;
  - `wharf fsck` finds nothing (exit 0), with the server running; and after the last round
    again with the server stopped (`--full`: every git object re-hashed).
It prints one line with the figures. More rounds (same data folder): WHARF_CRASH_ROUNDS=N;
a reproducible schedule: WHARF_CRASH_SEED=N.

Run alone: `python -m pytest -q -s tests/test_crash.py` (or `python tests/test_crash.py`).
"""
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")

import requests  # noqa: E402
from huggingface_hub import CommitOperationAdd, HfApi  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WHARF_BIN = Path(os.environ.get("WHARF_BIN", "target/debug/wharf"))
if not WHARF_BIN.is_absolute():
    WHARF_BIN = ROOT / WHARF_BIN

ROUNDS = int(os.environ.get("WHARF_CRASH_ROUNDS", "1"))
OPS = int(os.environ.get("WHARF_CRASH_OPS", "50"))
KILLS = int(os.environ.get("WHARF_CRASH_KILLS", "5"))
SEED = int(os.environ.get("WHARF_CRASH_SEED", str(random.randrange(1 << 30))))
# Also print why each unacknowledged operation failed.
VERBOSE = os.environ.get("WHARF_CRASH_VERBOSE") == "1"
# Keep the data folder and the server log (their path is printed).
KEEP = os.environ.get("WHARF_CRASH_KEEP") == "1"
THREADS = 4
START_DEADLINE_S = 60
# Seconds between kills, drawn uniformly: short enough that the kills land among the writes.
KILL_GAP = (0.4, 2.5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wharf(data_dir, *args, check=True):
    done = subprocess.run([str(WHARF_BIN), "--data", str(data_dir), *args], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise RuntimeError(f"wharf {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


class Server:
    """`wharf serve` on a fixed port; killed with SIGKILL and started again on demand."""

    def __init__(self, data_dir, log_path):
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "ab")
        self.log_path = log_path
        self.proc = None
        self.up = threading.Event()
        self.starts = 0

    def start(self):
        env = dict(os.environ, NO_COLOR="1", WHARF_XET_CONVERT_DELAY="0")
        self.proc = subprocess.Popen(
            [str(WHARF_BIN), "--data", str(self.data_dir), "serve", "--listen", f"127.0.0.1:{self.port}",
             "--no-inference"], stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.starts += 1
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wharf serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if requests.get(f"{self.endpoint}/api/models", timeout=2).status_code == 200:
                    self.up.set()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"wharf serve did not start:\n{self.tail()}")

    def kill(self):
        self.up.clear()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.up.clear()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, n=40):
        self.log.flush()
        lines = Path(self.log_path).read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


class Ledger:
    """What the server acknowledged (and which deletes were attempted), shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = 0
        self.acked = 0
        self.kinds = {}
        self.repos = {}  # repo id -> dict(created, delete_attempted, base)
        self.commits = []  # (repo, branch, sha)
        self.files = []  # (repo, sha, path, sha256)
        self.branches = {}  # (repo, branch) -> dict(target, delete_attempted)
        self.tags = {}  # (repo, tag) -> dict(target, delete_attempted)

    def ack(self, kind):
        with self.lock:
            self.acked += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def live_repos(self, include_base=True):
        with self.lock:
            return [r for r, s in self.repos.items()
                    if s["created"] and not s["delete_attempted"] and (include_base or not s["base"])]

    def live_branches(self, repo):
        with self.lock:
            return [b for (r, b), s in self.branches.items() if r == repo and not s["delete_attempted"]]

    def live_tags(self, repo):
        with self.lock:
            return [t for (r, t), s in self.tags.items() if r == repo and not s["delete_attempted"]]


class Worker:
    """One client thread: its own HfApi, git HOME and clones."""

    def __init__(self, run, index):
        self.run = run
        self.index = index
        self.api = HfApi(endpoint=run.server.endpoint, token=run.token)
        self.root = run.tmp / f"worker-{index}"
        self.home = self.root / "home"
        self.home.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GIT_", "GCM_")) and k not in ("SSH_ASKPASS", "XDG_CONFIG_HOME")
               and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"), GIT_TERMINAL_PROMPT="0",
                   GIT_CONFIG_NOSYSTEM="1", LC_ALL="C", LANG="C", NO_PROXY="127.0.0.1,localhost",
                   no_proxy="127.0.0.1,localhost")
        self.env = env
        self.git("config", "--global", "user.name", "Crash Tester")
        self.git("config", "--global", "user.email", "crash@example.com")
        self.git("config", "--global", "init.defaultBranch", "main")
        self.git("lfs", "install", "--skip-repo")

    def git(self, *args, cwd=None, check=True):
        done = subprocess.run(["git", *map(str, args)], cwd=str(cwd or self.root), env=self.env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise RuntimeError(f"git {' '.join(map(str, args))}: {done.stderr.strip()}")
        return done

    # -- operations: each returns normally only when the server acknowledged it --------------

    def create_repo(self, rng, base=False):
        repo = f"crash/{'base' if base else 'r'}-{uuid.uuid4().hex[:8]}"
        with self.run.ledger.lock:
            self.run.ledger.repos[repo] = {"created": False, "delete_attempted": False, "base": base}
        self.api.create_repo(repo)
        with self.run.ledger.lock:
            self.run.ledger.repos[repo]["created"] = True
        return "create-repo"

    def delete_repo(self, rng):
        candidates = self.run.ledger.live_repos(include_base=False)
        if not candidates:
            return self.create_repo(rng)
        repo = rng.choice(candidates)
        with self.run.ledger.lock:
            self.run.ledger.repos[repo]["delete_attempted"] = True
        self.api.delete_repo(repo)
        return "delete-repo"

    def api_commit(self, rng, branch="main"):
        repo = rng.choice(self.run.ledger.live_repos())
        if branch != "main":
            branches = self.run.ledger.live_branches(repo)
            if not branches:
                return self.create_branch(rng, repo)
            branch = rng.choice(branches)
        files = {f"notes/{uuid.uuid4().hex[:6]}.txt": os.urandom(rng.randint(10, 3000)).hex().encode()
                 for _ in range(rng.randint(1, 3))}
        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=d) for p, d in files.items()]
        info = self.api.create_commit(repo, operations=ops, commit_message="api commit", revision=branch)
        self.record_commit(repo, branch, info.oid, files)
        return "api-commit" if branch == "main" else "branch-commit"

    def upload_lfs(self, rng):
        repo = rng.choice(self.run.ledger.live_repos())
        data = os.urandom(rng.randint(64 << 10, 2 << 20))
        path = f"weights/{uuid.uuid4().hex[:6]}.bin"
        info = self.api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=repo,
                                    commit_message="lfs upload")
        self.record_commit(repo, "main", info.oid, {path: data})
        return "lfs-upload"

    def git_push(self, rng):
        repo = rng.choice(self.run.ledger.live_repos())
        clone = self.root / repo.replace("/", "__")
        parts = urlsplit(self.run.server.endpoint)
        url = f"{parts.scheme}://git:{self.run.token}@{parts.netloc}/{repo}"
        if not (clone / ".git").exists():
            shutil.rmtree(clone, ignore_errors=True)
            self.git("clone", "-q", url, clone)
            self.git("lfs", "install", "--local", cwd=clone)
        else:
            self.git("fetch", "-q", "origin", cwd=clone)
            self.git("reset", "-q", "--hard", "origin/main", cwd=clone)
        files = {f"pushed/{uuid.uuid4().hex[:6]}.txt": f"pushed {uuid.uuid4()}\n".encode()}
        if rng.random() < 0.6:
            files[f"pushed/{uuid.uuid4().hex[:6]}.bin"] = os.urandom(rng.randint(32 << 10, 1 << 20))
        for p, d in files.items():
            (clone / p).parent.mkdir(parents=True, exist_ok=True)
            (clone / p).write_bytes(d)
        self.git("add", "--", *files, cwd=clone)
        self.git("commit", "-q", "-m", "pushed", cwd=clone)
        # Another client may have moved main meanwhile: rebase and push again, as people do.
        for attempt in range(3):
            pushed = self.git("push", "-q", "origin", "HEAD:main", cwd=clone, check=attempt == 2)
            if pushed.returncode == 0:
                break
            self.git("pull", "-q", "--rebase", "origin", "main", cwd=clone)
        sha = self.git("rev-parse", "HEAD", cwd=clone).stdout.strip()
        self.record_commit(repo, "main", sha, files)
        return "git-push"

    def create_branch(self, rng, repo=None):
        repo = repo or rng.choice(self.run.ledger.live_repos())
        name = f"b-{uuid.uuid4().hex[:6]}"
        target = next(b.target_commit for b in self.api.list_repo_refs(repo).branches if b.name == "main")
        with self.run.ledger.lock:
            self.run.ledger.branches[(repo, name)] = {"target": None, "delete_attempted": False}
        self.api.create_branch(repo, branch=name, revision=target)
        with self.run.ledger.lock:
            self.run.ledger.branches[(repo, name)]["target"] = target
            self.run.ledger.commits.append((repo, name, target))
        return "create-branch"

    def delete_branch(self, rng):
        repo = rng.choice(self.run.ledger.live_repos())
        branches = self.run.ledger.live_branches(repo)
        if not branches:
            return self.create_branch(rng, repo)
        name = rng.choice(branches)
        with self.run.ledger.lock:
            self.run.ledger.branches[(repo, name)]["delete_attempted"] = True
        self.api.delete_branch(repo, branch=name)
        return "delete-branch"

    def tag(self, rng):
        repo = rng.choice(self.run.ledger.live_repos())
        tags = self.run.ledger.live_tags(repo)
        if tags and rng.random() < 0.4:
            tag = rng.choice(tags)
            with self.run.ledger.lock:
                self.run.ledger.tags[(repo, tag)]["delete_attempted"] = True
            self.api.delete_tag(repo, tag=tag)
            return "delete-tag"
        name = f"v-{uuid.uuid4().hex[:6]}"
        target = next(b.target_commit for b in self.api.list_repo_refs(repo).branches if b.name == "main")
        with self.run.ledger.lock:
            self.run.ledger.tags[(repo, name)] = {"target": None, "delete_attempted": False}
        self.api.create_tag(repo, tag=name, revision=target)
        with self.run.ledger.lock:
            self.run.ledger.tags[(repo, name)]["target"] = target
        return "create-tag"

    def record_commit(self, repo, branch, sha, files):
        with self.run.ledger.lock:
            self.run.ledger.commits.append((repo, branch, sha))
            for path, data in files.items():
                self.run.ledger.files.append((repo, sha, path, sha256(data)))

    OPS = [
        ("api_commit", 22), ("upload_lfs", 14), ("git_push", 18), ("branch_commit", 8),
        ("create_branch", 8), ("delete_branch", 5), ("tag", 9), ("create_repo", 8), ("delete_repo", 8),
    ]

    def one(self, rng):
        names, weights = zip(*self.OPS)
        op = rng.choices(names, weights)[0]
        if op == "branch_commit":
            return self.api_commit(rng, branch="any")
        return getattr(self, op)(rng)

    def loop(self):
        ledger = self.run.ledger
        while True:
            with ledger.lock:
                if ledger.attempted >= self.run.ops_target:
                    return
                ledger.attempted += 1
                n = ledger.attempted
            rng = random.Random(SEED * 1_000_003 + self.run.round * 10_007 + n)
            self.run.server.up.wait(timeout=START_DEADLINE_S)
            try:
                kind = self.one(rng)
                ledger.ack(kind)
            except Exception as e:  # a refused or interrupted operation: not acknowledged
                self.run.failures.append(f"{type(e).__name__}: {str(e)[:160]}")


class Run:
    def __init__(self, tmp):
        self.tmp = tmp
        self.data = tmp / "data"
        self.ledger = Ledger()
        self.failures = []
        self.round = 0
        self.ops_target = 0
        self.kills = 0
        self.concurrent_fscks = 0
        wharf(self.data, "user", "add", "crash", "--email", "crash@example.com")
        out = wharf(self.data, "token", "add", "crash", "--role", "write").stdout
        self.token = out.strip().splitlines()[-1].strip()
        self.server = Server(self.data, tmp / "server.log")
        self.server.start()
        self.workers = [Worker(self, i) for i in range(THREADS)]
        for _ in range(3):
            self.workers[0].create_repo(random.Random(SEED), base=True)

    def one_round(self):
        self.round += 1
        self.ops_target += OPS
        threads = [threading.Thread(target=w.loop, daemon=True) for w in self.workers]
        for t in threads:
            t.start()
        rng = random.Random(SEED + self.round)
        kills = 0
        while kills < KILLS and any(t.is_alive() for t in threads):
            time.sleep(rng.uniform(*KILL_GAP))
            if not any(t.is_alive() for t in threads):
                break
            self.server.kill()
            kills += 1
            self.server.start()
        # `wharf fsck` while clients still write: it must not take work in progress for damage.
        if any(t.is_alive() for t in threads):
            code, report, stderr = self.fsck()
            assert report is not None, stderr
            assert code == 0 and not findings_of(report), (findings_of(report), stderr, SEED)
            assert report["server_running"], report
            self.concurrent_fscks += 1
        for t in threads:
            t.join(timeout=600)
        self.kills += kills
        return kills

    # -- verification --------------------------------------------------------------------------

    def verify(self):
        api = HfApi(endpoint=self.server.endpoint, token=self.token)
        problems = []
        ledger = self.ledger
        exists = {}
        for repo, state in ledger.repos.items():
            try:
                api.repo_info(repo)
                exists[repo] = True
            except Exception:
                exists[repo] = False
                if state["created"] and not state["delete_attempted"]:
                    problems.append(f"{repo}: created (acknowledged) but gone")
        history = {}

        def commits_of(repo, branch):
            if (repo, branch) not in history:
                try:
                    history[(repo, branch)] = {c.commit_id for c in api.list_repo_commits(repo, revision=branch)}
                except Exception:
                    history[(repo, branch)] = None
            return history[(repo, branch)]

        for repo, branch, sha in ledger.commits:
            if not exists.get(repo):
                continue
            reachable = commits_of(repo, branch)
            if reachable is None:
                if branch == "main" or not ledger.branches.get((repo, branch), {}).get("delete_attempted"):
                    problems.append(f"{repo}: branch {branch} of acknowledged commit {sha[:12]} is gone")
            elif sha not in reachable:
                problems.append(f"{repo}: acknowledged commit {sha[:12]} not reachable from {branch}")
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        for repo, sha, path, digest in ledger.files:
            if not exists.get(repo):
                continue
            r = session.get(f"{self.server.endpoint}/{repo}/resolve/{sha}/{quote(path)}", timeout=60)
            if r.status_code != 200 or sha256(r.content) != digest:
                problems.append(f"{repo}@{sha[:12]}:{path}: status {r.status_code}, sha256 "
                                f"{sha256(r.content)[:12]} instead of {digest[:12]}")
        for (repo, tag), state in ledger.tags.items():
            if not exists.get(repo) or state["target"] is None or state["delete_attempted"]:
                continue
            tags = {t.name: t.target_commit for t in api.list_repo_refs(repo).tags}
            if tags.get(tag) != state["target"]:
                problems.append(f"{repo}: tag {tag} is {tags.get(tag)}, acknowledged at {state['target'][:12]}")
        return problems

    def fsck(self, *extra):
        done = wharf(self.data, "fsck", "--json", *extra, check=False)
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            report = None
        return done.returncode, report, done.stderr


def findings_of(report):
    return [f"{c['check']}: {f['subject']}: {f['problem']}" for c in report["checks"] for f in c["findings"]]


def run_crash_test(print_line=print):
    tmp = Path(tempfile.mkdtemp(prefix="wharf-crash-"))
    run = None
    started = time.monotonic()
    try:
        run = Run(tmp)
        for _ in range(ROUNDS):
            run.one_round()
            problems = run.verify()
            assert not problems, "\n".join(problems) + f"\nseed={SEED}\n{run.server.tail()}"
            code, report, stderr = run.fsck()
            assert report is not None, stderr
            assert code == 0 and not findings_of(report), (findings_of(report), stderr, SEED)
        run.server.stop()
        # Without a server nothing is in progress, and every object is re-hashed.
        code, report, stderr = run.fsck("--full")
        assert report is not None and not report["server_running"], stderr
        assert code == 0 and not findings_of(report), (findings_of(report), stderr, SEED)
        if VERBOSE:
            for failure in run.failures:
                print_line(f"  not acknowledged: {failure}")
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(run.ledger.kinds.items()))
        print_line(
            f"crash test: {ROUNDS} round(s), {run.ledger.attempted} operations, {run.ledger.acked} acknowledged "
            f"({kinds}), {run.kills} kills, {run.server.starts} server starts, fsck clean (during writes "
            f"{run.concurrent_fscks}x, after each round with the server running, and stopped), {time.monotonic() - started:.0f}s, seed {SEED}")
    finally:
        if run is not None:
            run.server.stop()
        if KEEP:
            print_line(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def test_crash_consistency(capsys):
    if not WHARF_BIN.exists():
        import pytest
        pytest.skip(f"{WHARF_BIN} does not exist: build it first")
    lines = []
    run_crash_test(lines.append)
    with capsys.disabled():
        print("\n" + "\n".join(lines))


if __name__ == "__main__":
    run_crash_test()
