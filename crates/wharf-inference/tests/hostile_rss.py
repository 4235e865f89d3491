"""Peak RSS of a wharf server under one hostile repository or request, and whether it survives.

    python hostile_rss.py WHARF_BIN TINY_MODELS_DIR [SCENARIO ...]

TINY_MODELS_DIR is what `make_tiny_models` writes. Each scenario runs on a fresh server on a
fresh data folder (so the VmHWM printed is that scenario's), with its address space limited to
12 GiB so that a runaway allocation fails fast instead of starving the machine. Prints one line
per scenario: the answer (status and X-Error-Message), its time, whether the server is still
alive, VmHWM before and after the request, and the server's last allocation-failure or panic
line if any. Needs requests and huggingface_hub (the test venv has both).
"""
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from huggingface_hub import HfApi

BIN, MODELS = Path(sys.argv[1]), Path(sys.argv[2])
WAIT = {"X-Wait-For-Model": "true"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def limit():
    resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))


def vm(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) // 1024
    except FileNotFoundError:
        return None


def folder_with(tmp, name, changes=None, drop=()):
    dst = tmp / name
    shutil.copytree(MODELS / name, dst)
    if changes is not None:
        cfg = json.loads((dst / "config.json").read_text())
        cfg.update(changes)
        for k in drop:
            cfg.pop(k, None)
        (dst / "config.json").write_text(json.dumps(cfg))
    return dst


SCENARIOS = {
    "layers": ("tiny-qwen2-text-generation", {"num_hidden_layers": 10**9}, (), {"inputs": "Hello"}),
    "positions": ("tiny-mistral-text-generation", {"max_position_embeddings": 2**31}, (),
                  {"inputs": "Hello", "parameters": {"max_new_tokens": 2}}),
    "labels": ("tiny-bert-text-classification", {"num_labels": 10**9}, ("id2label", "label2id"),
               {"inputs": "Hello"}),
    "qa-context": ("tiny-bert-question-answering", None, (),
                   {"inputs": {"question": "Which?", "context": "w1 " * ((15 << 20) // 3)}}),
    "zero-shot": ("tiny-bert-zero-shot", None, (),
                  {"inputs": "food " * ((14 << 20) // 5),
                   "parameters": {"candidate_labels": [str(i) for i in range(16)]}}),
    "long-text": ("tiny-bert-text-classification", None, (), {"inputs": "Paris is nice. " * ((15 << 20) // 15)}),
}


def run(name):
    model, changes, drop, body = SCENARIOS[name]
    tmp = Path(tempfile.mkdtemp(prefix="wharf-measure-"))
    data = tmp / "data"
    subprocess.run([BIN, "--data", data, "user", "add", "carol", "--email", "c@example.com"], check=True,
                   capture_output=True)
    token = subprocess.run([BIN, "--data", data, "token", "add", "carol", "--role", "write"], check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1].strip()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([BIN, "--data", data, "serve", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"), preexec_fn=limit)
    try:
        for _ in range(300):
            try:
                requests.get(f"{endpoint}/api/models", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        api = HfApi(endpoint=endpoint, token=token)
        repo = f"carol/{name}"
        api.create_repo(repo)
        api.upload_folder(folder_path=str(folder_with(tmp, model, changes, drop)), repo_id=repo)
        base = vm(proc.pid, "VmHWM")
        t0 = time.monotonic()
        try:
            r = requests.post(f"{endpoint}/models/{repo}", json=body, timeout=180,
                              headers={"Authorization": f"Bearer {token}", **WAIT})
            answer = f"{r.status_code} {r.headers.get('X-Error-Message', '')[:90]}"
        except requests.ConnectionError:
            answer = "connection dropped"
        except requests.Timeout:
            answer = "no answer in 180 s"
        took = time.monotonic() - t0
        time.sleep(0.5)
        alive = proc.poll() is None
        peak = vm(proc.pid, "VmHWM") if alive else None
        last = [l for l in (tmp / "server.log").read_text().splitlines() if "memory allocation" in l or "panicked" in l]
        print(f"{name:11} | {answer:100} | {took:6.1f} s | alive={alive} | VmHWM {base} -> {peak} MB"
              + (f" | {last[-1][:90]}" if last else ""), flush=True)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


for n in sys.argv[3:] or SCENARIOS:
    run(n)
