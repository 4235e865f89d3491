"""Integration tests: a real `wharf` server on a fresh data folder, driven over HTTP.

The session fixture `hub` prepares the accounts through the command line, starts
`wharf serve` on a free local port and hands out the endpoint, the tokens, an `HfApi` per
caller and small helpers for raw requests (the wire format is what these tests are about).

Accounts made for the run:
  alice  user with a password, owner of the organizations `acme` and `beta`
  bob    user, `read` member of `beta` (not a member of `acme`)
  tokens: write for alice and bob, read-only for alice

Environment: WHARF_BIN (default target/debug/wharf, relative to the repository root).
"""
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    return _free_port()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = _free_port()
ENDPOINT = f"http://127.0.0.1:{PORT}"

# huggingface_hub reads its configuration when it is imported: point it at the test server and
# keep the caller's own Hub setup (token, cache, offline mode, staging) out of the run.
os.environ["HF_ENDPOINT"] = ENDPOINT
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "HUGGINGFACE_CO_STAGING",
             "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_XET_CACHE"):
    os.environ.pop(_var, None)
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
_HF_HOME = tempfile.mkdtemp(prefix="wharf-test-hfhome-")
os.environ["HF_HOME"] = _HF_HOME

import requests  # noqa: E402
from huggingface_hub import HfApi  # noqa: E402

WHARF_BIN = Path(os.environ.get("WHARF_BIN", "target/debug/wharf"))
if not WHARF_BIN.is_absolute():
    WHARF_BIN = ROOT / WHARF_BIN

STARTUP_DEADLINE_S = 30
PASSWORD_ALICE = "alice-pass-123"
PASSWORD_BOB = "bob-pass-123"

# Error text the Hub sends (clients match on it).
STALE_PARENT_MESSAGE = "The branch was updated since you opened this page. Please refresh and try again."
BAD_CREDENTIALS_MESSAGE = "Invalid credentials in Authorization header"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --- NDJSON commit operations -----------------------------------------------------------------

def op_file(path, data: bytes):
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


def op_lfs(path, oid, size=None):
    value = {"path": path, "algo": "sha256", "oid": oid}
    if size is not None:
        value["size"] = size
    return {"key": "lfsFile", "value": value}


def op_delete(path):
    return {"key": "deletedFile", "value": {"path": path}}


class Hub:
    """The running server plus everything a test needs to talk to it."""

    STALE_PARENT_MESSAGE = STALE_PARENT_MESSAGE
    BAD_CREDENTIALS_MESSAGE = BAD_CREDENTIALS_MESSAGE
    op_file = staticmethod(op_file)
    op_lfs = staticmethod(op_lfs)
    op_delete = staticmethod(op_delete)
    sha256 = staticmethod(sha256)
    git_blob_sha1 = staticmethod(git_blob_sha1)

    def __init__(self, endpoint, data_dir, tokens):
        self.endpoint = endpoint
        self.data_dir = data_dir
        self.alice = tokens["alice"]
        self.bob = tokens["bob"]
        self.alice_read = tokens["alice_read"]
        self.alice_api = HfApi(endpoint=endpoint, token=self.alice)
        self.bob_api = HfApi(endpoint=endpoint, token=self.bob)
        self.alice_read_api = HfApi(endpoint=endpoint, token=self.alice_read)
        self.anon_api = HfApi(endpoint=endpoint, token=False)
        self.session = requests.Session()

    # -- naming
    @staticmethod
    def unique(prefix="repo"):
        """A repo name no other test uses."""
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def cli(self, *args):
        """Runs the wharf command line on the server's data folder; returns its stdout."""
        return _cli(*args, data_dir=self.data_dir)

    def api(self, token):
        return HfApi(endpoint=self.endpoint, token=token if token else False)

    # -- raw HTTP
    def url(self, path):
        return self.endpoint + path

    def request(self, method, path, token=None, headers=None, **kw):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        kw.setdefault("timeout", 60)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(path), headers=h, **kw)

    def create_repo(self, token, name=None, private=False, organization=None, repo_type="model", prefix="repo"):
        """Creates a repo through the API and returns its id."""
        name = name or self.unique(prefix)
        body = {"name": name, "organization": organization, "private": private}
        if repo_type != "model":
            body["type"] = repo_type
        r = self.request("POST", "/api/repos/create", token, json=body)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["name"]

    def commit(self, repo_id, operations, token, revision="main", summary="test commit", parent=None,
               create_pr=False, repo_type="model"):
        """Sends the NDJSON commit as the client does and returns the raw response."""
        header = {"summary": summary, "description": ""}
        if parent:
            header["parentCommit"] = parent
        lines = [{"key": "header", "value": header}, *operations]
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return self.commit_raw(repo_id, body, token, revision=revision, create_pr=create_pr, repo_type=repo_type)

    def commit_raw(self, repo_id, body: bytes, token, revision="main", create_pr=False, repo_type="model"):
        params = {"create_pr": "1"} if create_pr else None
        path = f"/api/{repo_type}s/{repo_id}/commit/{quote(revision, safe='')}"
        return self.request("POST", path, token, data=body, params=params,
                            headers={"Content-Type": "application/x-ndjson"})

    def commit_ok(self, repo_id, operations, token, **kw):
        r = self.commit(repo_id, operations, token, **kw)
        assert r.status_code == 200, (r.status_code, r.headers.get("x-error-message"), r.text)
        return r.json()["commitOid"]

    def head_sha(self, repo_id, token=None, revision="main"):
        r = self.request("GET", f"/api/models/{repo_id}/revision/{quote(revision, safe='')}", token or self.alice)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["sha"]

    def lfs_batch(self, repo_id, objects, token, operation="upload"):
        body = {"operation": operation, "transfers": ["basic", "multipart"], "hash_algo": "sha256",
                "objects": [{"oid": oid, "size": size} for oid, size in objects]}
        return self.request("POST", f"/{repo_id}.git/info/lfs/objects/batch", token, json=body,
                            headers={"Accept": "application/vnd.git-lfs+json",
                                     "Content-Type": "application/vnd.git-lfs+json"})

    def lfs_upload(self, repo_id, data: bytes, token):
        """Batch, PUT (without credentials, as the Python client does) and verify; returns the oid."""
        oid = sha256(data)
        r = self.lfs_batch(repo_id, [(oid, len(data))], token)
        assert r.status_code == 200, (r.status_code, r.text)
        obj = r.json()["objects"][0]
        actions = obj.get("actions") or {}
        if "upload" in actions:
            put = requests.put(actions["upload"]["href"], data=data, timeout=60)
            assert put.status_code == 200, (put.status_code, put.text)
            if "verify" in actions:
                v = requests.post(actions["verify"]["href"], json={"oid": oid, "size": len(data)}, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"})
                assert v.status_code == 200, (v.status_code, v.text)
        return oid

    # -- assertions
    @staticmethod
    def assert_error(r, status, code=None, message=None, message_contains=None):
        """Exact status; the Hub's X-Error-Code when given; X-Error-Message and the JSON
        {"error": ...} body carrying the same text."""
        detail = (r.request.method, r.request.url, r.status_code, dict(r.headers), r.text[:500])
        assert r.status_code == status, detail
        if code is not None:
            assert r.headers.get("X-Error-Code") == code, detail
        msg = r.headers.get("X-Error-Message")
        assert msg, ("no X-Error-Message", detail)
        if message is not None:
            assert msg == message, detail
        if message_contains is not None:
            assert message_contains in msg, detail
        if r.request.method != "HEAD":
            assert r.headers.get("Content-Type", "").startswith("application/json"), detail
            body = r.json()
            assert isinstance(body, dict) and "error" in body, detail
            assert isinstance(body["error"], str) and body["error"], detail
            if message is not None:
                assert body["error"] == message, detail
        return msg


def _cli(*args, data_dir):
    done = subprocess.run([str(WHARF_BIN), "--data", str(data_dir), *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"wharf {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def _token(name, role, data_dir):
    out = _cli("token", "add", name, "--role", role, data_dir=data_dir)
    token = out.strip().splitlines()[-1].strip()
    assert token.startswith("hf_"), out
    return token


_REPORT = []


def pytest_configure(config):
    # The client's own deprecation noise (it passes bytes as `data=` to its HTTP library).
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:httpx2")


def pytest_terminal_summary(terminalreporter):
    for text in _REPORT:
        terminalreporter.section("wharf server log")
        terminalreporter.write_line(text)


def _log_tail(path, n=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError as e:
        return f"(no server log: {e})"


# The suite sends thousands of requests from one address and a few wrong credentials on
# purpose; the defaults would start refusing it.
SUITE_RATE_LIMITS = "api=1000000,resolvers=1000000,pages=1000000,auth=100000"


def start_server(data_dir, port, log_path, rate_limits=None, extra_args=()):
    """Starts `wharf serve` on `data_dir` and waits until it answers; returns (process, log)."""
    log = open(log_path, "wb")
    # LFS objects are converted to Xet storage as soon as they are uploaded (test_xet.py).
    env = dict(os.environ, NO_COLOR="1", WHARF_XET_CONVERT_DELAY="0")
    if rate_limits is not None:
        env["WHARF_RATE_LIMITS"] = rate_limits
    proc = subprocess.Popen([str(WHARF_BIN), "--data", str(data_dir), "serve", "--listen", f"127.0.0.1:{port}",
                             *extra_args],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/models", timeout=2).status_code == 200:
                return proc, log
        except requests.RequestException:
            pass
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    log.close()
    pytest.exit(f"wharf did not start on port {port}:\n{_log_tail(log_path)}", returncode=2)


def stop_server(proc, log):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="session")
def hub(request):
    if not WHARF_BIN.exists():
        pytest.exit(f"{WHARF_BIN} does not exist: build it first (cargo build -p wharf)", returncode=2)
    data_dir = Path(tempfile.mkdtemp(prefix="wharf-test-data-"))
    log_dir = Path(tempfile.mkdtemp(prefix="wharf-test-log-"))
    log_path = log_dir / "server.log"

    _cli("user", "add", "alice", "--email", "alice@example.com", "--password", PASSWORD_ALICE, data_dir=data_dir)
    _cli("user", "add", "bob", "--email", "bob@example.com", "--password", PASSWORD_BOB, data_dir=data_dir)
    _cli("org", "add", "acme", "--owner", "alice", data_dir=data_dir)
    _cli("org", "add", "beta", "--owner", "alice", data_dir=data_dir)
    _cli("org", "member", "beta", "bob", "--role", "read", data_dir=data_dir)
    tokens = {
        "alice": _token("alice", "write", data_dir),
        "bob": _token("bob", "write", data_dir),
        "alice_read": _token("alice", "read", data_dir),
    }

    # Limits far above what the suite sends (tests of the limits start their own server).
    proc, log = start_server(data_dir, PORT, log_path, rate_limits=SUITE_RATE_LIMITS)

    yield Hub(ENDPOINT, data_dir, tokens)

    died = proc.poll() is not None
    stop_server(proc, log)
    if died or request.session.testsfailed:
        reason = "the server died" if died else "tests failed"
        _REPORT.append(f"last lines of the server log ({reason}):\n{_log_tail(log_path)}")

    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.rmtree(log_dir, ignore_errors=True)
    shutil.rmtree(_HF_HOME, ignore_errors=True)
