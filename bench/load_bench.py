"""Driver of bench/load.sh: load against one running Wharf server.

  writers   BASE TOKEN REPO --pid P --writers N --commits M   N threads x M commits on `main`
  upload    BASE TOKEN REPO FILE PATH                         one LFS upload + commit of FILE
  downloads URL --pid P --count N --size S --sha256 H ...     N concurrent GETs (curl) to the end
  idle      BASE --pid P --idle N --partial N --probes K      idle / half-open connections
  slow      BASE TOKEN REPO --pid P ...                       slow-body clients + normal traffic
  xet-upload BASE TOKEN REPO SIZE                             HfApi.upload_file through Xet
  report    OUT META.json PHASE.json...                       the summary table

Every command but `report` prints one JSON object on its last stdout line; progress goes to
stderr. Only the standard library is used, except `xet-upload` (huggingface_hub + hf_xet).
"""
import argparse
import base64
import collections
import hashlib
import http.client
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

MIB = 1 << 20


def log(msg):
    print(f"[load] {msg}", file=sys.stderr, flush=True)


def pctl(values, p):
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


def stats_ms(values):
    """p50 / p95 / max of a list of seconds, in ms."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(pctl(values, 50) * 1000, 1),
        "p95_ms": round(pctl(values, 95) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


# ------------------------------------------------------------------------------ process stats


def proc_field(pid, key):
    """A number of /proc/PID/status (kB for memory fields)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_status(pid, key):
    """A memory field of /proc/PID/status, in MiB."""
    v = proc_field(pid, key)
    return None if v is None else v / 1024


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Sampler(threading.Thread):
    """Peak memory of a process over a phase: VmHWM after resetting it (`5 > clear_refs`,
    Linux >= 4.0, needs the right to write there), plus VmRSS and open fds sampled."""

    def __init__(self, pid, interval=0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.stop_event = threading.Event()
        self.rss_max = 0.0
        self.fds_max = 0
        self.threads_max = 0
        self.rss_start = proc_status(pid, "VmRSS")
        self.fds_start = fd_count(pid)
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.start()

    def run(self):
        i = 0
        while not self.stop_event.is_set():
            rss = proc_status(self.pid, "VmRSS")
            if rss is not None:
                self.rss_max = max(self.rss_max, rss)
            threads = proc_field(self.pid, "Threads")
            if threads is not None:
                self.threads_max = max(self.threads_max, threads)
            if i % 5 == 0:
                n = fd_count(self.pid)
                if n is not None:
                    self.fds_max = max(self.fds_max, n)
            i += 1
            self.stop_event.wait(self.interval)

    def finish(self):
        self.stop_event.set()
        self.join()
        hwm = proc_status(self.pid, "VmHWM")
        return {
            "rss_start_mib": round(self.rss_start or 0, 1),
            "rss_peak_sampled_mib": round(self.rss_max, 1),
            "vmhwm_mib": round(hwm or 0, 1),
            # Without the reset, VmHWM is the peak since the server started.
            "vmhwm_reset": self.hwm_reset,
            "peak_mib": round(max(self.rss_max, hwm or 0) if self.hwm_reset else self.rss_max, 1),
            "rss_end_mib": round(proc_status(self.pid, "VmRSS") or 0, 1),
            "fds_start": self.fds_start,
            "fds_max": self.fds_max,
            "fds_end": fd_count(self.pid),
            "threads_max": self.threads_max,
            "threads_end": proc_field(self.pid, "Threads"),
        }


# ------------------------------------------------------------------------------ HTTP


class Client:
    """One keep-alive HTTP/1.1 connection (reopened after an error), with the Bearer token."""

    def __init__(self, base, token=None, timeout=120):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.token, self.timeout = token, timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None):
        h = {"User-Agent": "wharf-load-bench"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout, blocksize=MIB)
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        if (r.getheader("connection") or "").lower() == "close":
            self.close()
        return r.status, r, data


def once(base, method, path, token=None, body=None, headers=None, timeout=120):
    """One request on its own connection: (status, response, body)."""
    c = Client(base, token, timeout)
    try:
        return c.request(method, path, body, dict(headers or {}, Connection="close"))
    finally:
        c.close()


def message_of(r, data):
    m = r.getheader("x-error-message") if r is not None else None
    if not m:
        m = data[:200].decode("utf-8", "replace")
        try:
            m = json.loads(data).get("error", m)
        except Exception:
            pass
    return m


def paged(c, path):
    """GET a JSON list, following `Link: <...>; rel="next"`."""
    out = []
    while path:
        s, r, d = c.request("GET", path)
        if s != 200:
            raise RuntimeError(f"GET {path}: HTTP {s}: {message_of(r, d)}")
        out += json.loads(d)
        link = r.getheader("link") or ""
        path = None
        for part in link.split(","):
            if 'rel="next"' in part:
                u = urllib.parse.urlsplit(part.split(";")[0].strip().strip("<>"))
                path = u.path + ("?" + u.query if u.query else "")
    return out


def ndjson(lines):
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


# ------------------------------------------------------------------------------ writers


def cmd_writers(a):
    repo = a.repo
    commit_path = f"/api/models/{repo}/commit/main"
    head_path = f"/api/models/{repo}/revision/main"
    barrier = threading.Barrier(a.writers)
    results = [None] * a.writers

    def new_stats():
        return {
            "acked": [],  # (sha, path)
            "attempts": [],
            "ack_s": [],  # first try -> acknowledged
            "req_s": collections.defaultdict(list),  # status -> request seconds
            "statuses": collections.Counter(),
            "head_reads": 0,
            "head_statuses": collections.Counter(),
            "errors": collections.Counter(),
            "samples": {},
            "gave_up": 0,
        }

    def read_head(c, st):
        for _ in range(100):
            st["head_reads"] += 1
            try:
                s, r, d = c.request("GET", head_path)
            except Exception as e:
                st["errors"][f"head read: {type(e).__name__}"] += 1
                time.sleep(0.05)
                continue
            st["head_statuses"][s] += 1
            if s == 200:
                return json.loads(d)["sha"]
            st["samples"].setdefault(f"head read HTTP {s}", message_of(r, d))
            time.sleep(0.05)
        raise RuntimeError("cannot read the head of main")

    def writer(i):
        c = Client(a.base, a.token)
        st = new_stats()
        results[i] = st
        barrier.wait()
        try:
            head = read_head(c, st)
            for j in range(a.commits):
                path = f"w{i:02d}/c{j:03d}.txt"
                first = time.monotonic()
                attempt, failures = 0, 0
                while True:
                    attempt += 1
                    if attempt > a.max_attempts or failures >= 3:
                        st["gave_up"] += 1
                        break
                    content = f"writer {i}, commit {j}, attempt {attempt}\n".encode()
                    body = ndjson([
                        {"key": "header", "value": {"summary": f"writer {i} commit {j}", "description": "", "parentCommit": head}},
                        {"key": "file", "value": {"path": path, "content": base64.b64encode(content).decode(), "encoding": "base64"}},
                    ])
                    t0 = time.monotonic()
                    try:
                        s, r, d = c.request("POST", commit_path, body, {"Content-Type": "application/x-ndjson"})
                    except Exception as e:
                        # The commit may or may not have landed: not acknowledged either way.
                        st["errors"][f"commit: {type(e).__name__}"] += 1
                        failures += 1
                        head = read_head(c, st)
                        continue
                    dt = time.monotonic() - t0
                    st["statuses"][s] += 1
                    st["req_s"][s].append(dt)
                    if s == 200:
                        sha = json.loads(d)["commitOid"]
                        st["acked"].append((sha, path))
                        st["attempts"].append(attempt)
                        st["ack_s"].append(time.monotonic() - first)
                        head = sha
                        break
                    st["samples"].setdefault(f"commit HTTP {s}", message_of(r, d))
                    if s != 412:
                        failures += 1
                    head = read_head(c, st)
        except Exception as e:
            st["errors"][f"writer stopped: {type(e).__name__}: {e}"] += 1
        finally:
            c.close()

    c = Client(a.base, a.token)
    before = {x["id"] for x in paged(c, f"/api/models/{repo}/commits/main?limit=1000")}
    c.close()
    sampler = Sampler(a.pid)
    log(f"writers: {a.writers} x {a.commits} commits on {repo}@main")
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(a.writers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    mem = sampler.finish()

    acked, attempts, ack_s = [], [], []
    statuses, head_statuses, errors = collections.Counter(), collections.Counter(), collections.Counter()
    req_s = collections.defaultdict(list)
    samples, head_reads, gave_up = {}, 0, 0
    for st in results:
        acked += st["acked"]
        attempts += st["attempts"]
        ack_s += st["ack_s"]
        statuses += st["statuses"]
        head_statuses += st["head_statuses"]
        errors += st["errors"]
        head_reads += st["head_reads"]
        gave_up += st["gave_up"]
        for k, v in st["req_s"].items():
            req_s[k] += v
        for k, v in st["samples"].items():
            samples.setdefault(k, v)

    # Every acknowledged commit must be reachable from main, and its file in main's tree.
    c = Client(a.base, a.token)
    history = [x["id"] for x in paged(c, f"/api/models/{repo}/commits/main?limit=1000")]
    tree = paged(c, f"/api/models/{repo}/tree/main?recursive=true")
    c.close()
    in_history = set(history)
    files = {e["path"] for e in tree if e.get("type") == "file"}
    acked_shas = {sha for sha, _ in acked}
    lost = sorted(sha for sha in acked_shas if sha not in in_history)
    missing = sorted(p for _, p in acked if p not in files)
    out = {
        "phase": "writers",
        "writers": a.writers,
        "commits_each": a.commits,
        "commits_wanted": a.writers * a.commits,
        "acked": len(acked),
        "acked_distinct": len(acked_shas),
        "history_len": len(history),
        "history_before": len(before),
        "history_unacked": len(in_history - acked_shas - before),
        "lost": len(lost),
        "lost_shas": lost[:10],
        "files_missing": len(missing),
        "files_missing_sample": missing[:10],
        "gave_up": gave_up,
        "commit_requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "n412": statuses.get(412, 0),
        "n5xx_commit": sum(v for k, v in statuses.items() if k >= 500),
        "n5xx_head": sum(v for k, v in head_statuses.items() if k >= 500),
        "head_reads": head_reads,
        "head_statuses": {str(k): v for k, v in sorted(head_statuses.items())},
        "other_errors": sum(v for k, v in statuses.items() if k not in (200, 412) and k < 500) + sum(errors.values()),
        "errors": dict(errors),
        "samples": samples,
        "seconds": round(elapsed, 2),
        "commits_per_s": round(len(acked) / elapsed, 1) if elapsed else None,
        "attempts_mean": round(sum(attempts) / len(attempts), 2) if attempts else None,
        "attempts_max": max(attempts) if attempts else None,
        "ack": stats_ms(ack_s),
        "request_200": stats_ms(req_s.get(200, [])),
        "request_412": stats_ms(req_s.get(412, [])),
        "memory": mem,
    }
    print(json.dumps(out))


# ------------------------------------------------------------------------------ LFS upload


def lfs_upload(base, token, repo, data_or_path, size, oid, timeout=600):
    """Batch + PUT (+ verify) of one object; returns (status of the first failing step or 200,
    step name, message)."""
    c = Client(base, token, timeout)
    try:
        req = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}], "hash_algo": "sha256"}
        s, r, d = c.request("POST", f"/{repo}.git/info/lfs/objects/batch", json.dumps(req).encode(),
                            {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"})
        if s != 200:
            return s, "batch", message_of(r, d)
        obj = json.loads(d)["objects"][0]
        if "error" in obj:
            return obj["error"].get("code", 0), "batch", obj["error"].get("message")
        actions = obj.get("actions") or {}
        if "upload" in actions:
            up = actions["upload"]
            u = urllib.parse.urlsplit(up["href"])
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout, blocksize=MIB)
            try:
                headers = dict(up.get("header") or {})
                headers.update({"Content-Type": "application/octet-stream", "Content-Length": str(size)})
                if isinstance(data_or_path, (bytes, bytearray)):
                    conn.request("PUT", u.path + "?" + u.query, body=data_or_path, headers=headers)
                else:
                    with open(data_or_path, "rb") as f:
                        conn.request("PUT", u.path + "?" + u.query, body=f, headers=headers)
                r = conn.getresponse()
                d = r.read()
            finally:
                conn.close()
            if r.status != 200:
                return r.status, "PUT", message_of(r, d)
        if "verify" in actions:
            v = actions["verify"]
            u = urllib.parse.urlsplit(v["href"])
            s, r, d = c.request("POST", u.path + ("?" + u.query if u.query else ""), json.dumps({"oid": oid, "size": size}).encode(),
                                dict(v.get("header") or {}, **{"Content-Type": "application/vnd.git-lfs+json"}))
            if s != 200:
                return s, "verify", message_of(r, d)
        return 200, "done", ""
    finally:
        c.close()


def cmd_upload(a):
    size = os.path.getsize(a.file)
    h = hashlib.sha256()
    with open(a.file, "rb") as f:
        while block := f.read(8 * MIB):
            h.update(block)
    oid = h.hexdigest()
    t0 = time.monotonic()
    s, step, msg = lfs_upload(a.base, a.token, a.repo, a.file, size, oid)
    if s != 200:
        raise SystemExit(f"LFS upload failed at {step}: HTTP {s}: {msg}")
    body = ndjson([
        {"key": "header", "value": {"summary": f"add {a.path}", "description": ""}},
        {"key": "lfsFile", "value": {"path": a.path, "algo": "sha256", "oid": oid, "size": size}},
    ])
    s, r, d = once(a.base, "POST", f"/api/models/{a.repo}/commit/main", a.token, body, {"Content-Type": "application/x-ndjson"})
    if s != 200:
        raise SystemExit(f"commit failed: HTTP {s}: {message_of(r, d)}")
    print(json.dumps({"oid": oid, "size": size, "seconds": round(time.monotonic() - t0, 2)}))


# ------------------------------------------------------------------------------ downloads


def cmd_downloads(a):
    fmt = "%{http_code} %{size_download} %{time_total} %{time_starttransfer}\n"
    base_cmd = ["curl", "-sS", "-L", "--http1.1"]
    for h in a.header or []:
        base_cmd += ["-H", h]
    sampler = Sampler(a.pid)
    worker_samplers = [Sampler(p) for p in a.extra_pid or []]
    procs, hashers, digests = [], [], {}

    def hash_stream(k, p):
        h = hashlib.sha256()
        n = 0
        while block := p.stdout.read(MIB):
            h.update(block)
            n += len(block)
        digests[k] = (h.hexdigest(), n)

    log(f"downloads: {a.count} concurrent GET {a.url}")
    t0 = time.monotonic()
    starts = []
    for k in range(a.count):
        starts.append(time.monotonic())
        if k < a.hash_checks:
            p = subprocess.Popen(base_cmd + ["-o", "-", "-w", "%{stderr}" + fmt, a.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            t = threading.Thread(target=hash_stream, args=(k, p))
            t.start()
            hashers.append(t)
        else:
            p = subprocess.Popen(base_cmd + ["-o", "/dev/null", "-w", fmt, a.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
    launched = time.monotonic() - t0
    rows, ends = [], []
    for k, p in enumerate(procs):
        if k < a.hash_checks:
            hashers[k].join()
            err = p.stderr.read().decode()
            p.wait()
            out = err.strip().splitlines()[-1] if err.strip() else ""
        else:
            o, err = p.communicate()
            err = err.decode()
            out = o.decode().strip()
        ends.append(time.monotonic())
        parts = out.split()
        if p.returncode != 0 or len(parts) != 4:
            rows.append({"ok": False, "code": None, "size": None, "error": f"curl exit {p.returncode}: {err.strip()[:200]}"})
            continue
        code, size, total, ttfb = int(parts[0]), int(float(parts[1])), float(parts[2]), float(parts[3])
        rows.append({"ok": code == 200 and size == a.size, "code": code, "size": size, "time": total, "ttfb": ttfb})
    elapsed = max(ends) - t0
    mem = sampler.finish()
    ref_mem = [s.finish() for s in worker_samplers]
    good = [r for r in rows if r["ok"]]
    hashes_ok = sum(1 for k, (hx, n) in digests.items() if hx == a.sha256 and n == a.size)
    times = [r["time"] for r in good]
    per_client = [a.size / 1e6 / t for t in times if t > 0]
    codes = collections.Counter(str(r["code"]) for r in rows)
    out = {
        "phase": "downloads",
        "label": a.label,
        "url": a.url,
        "count": a.count,
        "size": a.size,
        "complete": len(good),
        "failed": len(rows) - len(good),
        "codes": dict(codes),
        "errors": [r["error"] for r in rows if "error" in r][:5],
        "n5xx": sum(v for k, v in codes.items() if k.isdigit() and int(k) >= 500),
        "hash_checks": len(digests),
        "hash_ok": hashes_ok,
        "seconds": round(elapsed, 2),
        "launch_seconds": round(launched, 2),
        "aggregate_MBps": round(a.size * len(good) / 1e6 / elapsed, 0) if elapsed else None,
        "client_MBps_min": round(min(per_client), 1) if per_client else None,
        "client_MBps_median": round(pctl(per_client, 50), 1) if per_client else None,
        "client_MBps_max": round(max(per_client), 1) if per_client else None,
        "ttfb": stats_ms([r["ttfb"] for r in good]),
        "time": stats_ms(times),
        "memory": mem,
        "reference_memory": ref_mem,
    }
    print(json.dumps(out))


# ------------------------------------------------------------------------------ idle connections


def probe_latency(base, n, path="/api/models"):
    """n sequential GETs, each on a new connection: (seconds of the 200s, failures)."""
    lat, fails = [], collections.Counter()
    for _ in range(n):
        t0 = time.monotonic()
        try:
            s, r, d = once(base, "GET", path, timeout=60)
        except Exception as e:
            fails[type(e).__name__] += 1
            continue
        if s == 200:
            lat.append(time.monotonic() - t0)
        else:
            fails[f"HTTP {s}"] += 1
    return lat, fails


class Watch(threading.Thread):
    """GET `path` every `pause` s on a new connection until stopped: does the server still
    answer (and how fast) while something else goes on?"""

    def __init__(self, base, path="/api/models", pause=0.2, timeout=15):
        super().__init__(daemon=True)
        self.base, self.path, self.pause, self.timeout = base, path, pause, timeout
        self.stop_event = threading.Event()
        self.ok, self.fails = [], collections.Counter()
        self.start()

    def run(self):
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            try:
                s, _, _ = once(self.base, "GET", self.path, timeout=self.timeout)
                if s == 200:
                    self.ok.append(time.monotonic() - t0)
                else:
                    self.fails[f"HTTP {s}"] += 1
            except Exception as e:
                self.fails[type(e).__name__] += 1
            self.stop_event.wait(self.pause)

    def finish(self):
        self.stop_event.set()
        self.join()
        return dict(stats_ms(self.ok), failures=dict(self.fails))


def cmd_idle(a):
    u = urllib.parse.urlsplit(a.base)
    addr = (u.hostname, u.port)
    mem0 = {"rss_mib": round(proc_status(a.pid, "VmRSS") or 0, 1), "fds": fd_count(a.pid)}
    log(f"idle: baseline latency ({a.probes} x GET /api/models)")
    lat0, fail0 = probe_latency(a.base, a.probes)
    sampler = Sampler(a.pid)
    watch = Watch(a.base)
    socks = []  # (socket, kind, opened at)
    open_errors = collections.Counter()
    partial = b"GET /api/models HTTP/1.1\r\nHost: " + u.netloc.encode() + b"\r\nUser-Agent: half-open\r\n"
    log(f"idle: opening {a.idle} silent and {a.partial} half-open connections")
    t_open0 = time.monotonic()
    for kind, n in (("silent", a.idle), ("partial", a.partial)):
        for _ in range(n):
            try:
                s = socket.create_connection(addr, timeout=10)
                if kind == "partial":
                    s.sendall(partial)
                s.setblocking(False)
                socks.append((s, kind, time.monotonic()))
            except OSError as e:
                open_errors[f"{kind}: {type(e).__name__}"] += 1
    opened_s = time.monotonic() - t_open0
    time.sleep(1.0)
    held = {"rss_mib": round(proc_status(a.pid, "VmRSS") or 0, 1), "fds": fd_count(a.pid)}
    log(f"idle: {len(socks)} open in {opened_s:.1f} s; server fds {held['fds']}, RSS {held['rss_mib']} MiB; probing")
    lat1, fail1 = probe_latency(a.base, a.probes)
    after_probe = {"rss_mib": round(proc_status(a.pid, "VmRSS") or 0, 1), "fds": fd_count(a.pid)}

    # Wait for the server to drop them (header timeout), noting when and how each one ended.
    sel = selectors.DefaultSelector()
    for s, kind, t in socks:
        sel.register(s, selectors.EVENT_READ, (kind, t))
    ended = {"silent": [], "partial": []}
    how = collections.Counter()
    deadline = time.monotonic() + a.timeout + a.grace
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            kind, t = key.data
            s = key.fileobj
            try:
                data = s.recv(4096)
                what = "closed (EOF)" if not data else "answered " + data.split(b"\r\n", 1)[0].decode("latin-1")
            except ConnectionResetError:
                what = "reset"
            except BlockingIOError:
                continue
            ended[kind].append(time.monotonic() - t)
            how[f"{kind}: {what}"] += 1
            sel.unregister(s)
            s.close()
    still = collections.Counter(key.data[0] for key in sel.get_map().values())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    time.sleep(1.0)
    watched = watch.finish()
    mem = sampler.finish()
    drops = {}
    for kind in ("silent", "partial"):
        e = ended[kind]
        drops[kind] = {
            "opened": sum(1 for _, k, _ in socks if k == kind),
            "dropped": len(e),
            "dropped_before_timeout": sum(1 for x in e if x < a.timeout - 1),
            "still_open": still.get(kind, 0),
            "drop_s_min": round(min(e), 1) if e else None,
            "drop_s_median": round(pctl(e, 50), 1) if e else None,
            "drop_s_max": round(max(e), 1) if e else None,
        }
    out = {
        "phase": "idle",
        "idle": a.idle,
        "partial": a.partial,
        "opened": len(socks),
        "open_errors": dict(open_errors),
        "open_seconds": round(opened_s, 2),
        "probes": a.probes,
        "baseline": dict(stats_ms(lat0), failures=dict(fail0)),
        "loaded": dict(stats_ms(lat1), failures=dict(fail1)),
        "watch": watched,
        "server_before": mem0,
        "server_held": held,
        "server_after_probe": after_probe,
        "server_end": {"rss_mib": round(proc_status(a.pid, "VmRSS") or 0, 1), "fds": fd_count(a.pid)},
        "header_timeout_s": a.timeout,
        "drops": drops,
        "how": dict(how),
        "memory": mem,
    }
    print(json.dumps(out))


# ------------------------------------------------------------------------------ slow bodies


class SlowClient:
    def __init__(self, group, addr, head, declared, first=b"", trickle=True, byte=b"\0"):
        self.group, self.declared, self.trickle, self.byte = group, declared, trickle, byte
        self.sock = socket.create_connection(addr, timeout=10)
        self.sock.sendall(head + first)
        self.sock.setblocking(False)
        self.sent = len(first)
        self.t0 = time.monotonic()
        self.outcome = None
        self.ended = None
        self.message = ""

    def finish(self, outcome, message=""):
        if self.outcome is None:
            self.outcome = outcome
            self.message = message
            self.ended = time.monotonic() - self.t0
        try:
            self.sock.close()
        except OSError:
            pass

    def read_answer(self):
        """After the socket turned readable: the answer's status, or how it closed."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            return self.finish("reset by server")
        if not data:
            return self.finish("closed without answer")
        head = data.split(b"\r\n\r\n", 1)
        first = head[0].split(b"\r\n", 1)[0].decode("latin-1")
        msg = ""
        for line in head[0].split(b"\r\n")[1:]:
            if line.lower().startswith(b"x-error-message:"):
                msg = line.split(b":", 1)[1].strip().decode("utf-8", "replace")
        if not msg and len(head) > 1:
            msg = head[1][:160].decode("utf-8", "replace")
        parts = first.split()
        self.finish(f"HTTP {parts[1]}" if len(parts) > 1 else first, msg)

    def tick(self):
        if self.outcome is not None or not self.trickle or self.sent >= self.declared:
            return
        try:
            self.sock.send(self.byte)
            self.sent += 1
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.read_answer()
            if self.outcome is None:
                self.finish("reset by server")


class ProbeLoop(threading.Thread):
    """Normal traffic during the slow phase: `fn()` -> (status or error name, seconds), in a loop."""

    def __init__(self, name, fn, until, pause):
        super().__init__(daemon=True)
        self.name_, self.fn, self.until, self.pause = name, fn, until, pause
        self.results = []  # (started at, outcome, seconds)
        self.start()

    def run(self):
        while time.monotonic() < self.until:
            t0 = time.monotonic()
            try:
                outcome = self.fn()
            except Exception as e:
                outcome = type(e).__name__
            self.results.append((t0, str(outcome), time.monotonic() - t0))
            time.sleep(self.pause)

    def summary(self, t_start):
        ok = [d for _, o, d in self.results if o == "200"]
        return {
            "n": len(self.results),
            "ok": len(ok),
            "outcomes": dict(collections.Counter(o for _, o, _ in self.results)),
            "ok_latency": stats_ms(ok),
            "all_latency": stats_ms([d for _, _, d in self.results]),
            "timeline": [[round(t - t_start, 1), o, round(d, 2)] for t, o, d in self.results][:60],
        }


def xet_probe(a, size, timeout):
    """One Xet upload through the official client, in a child process (hf_xet retries 5xx by
    itself, so a starved upload shows up as a long one or a timeout)."""
    env = dict(os.environ, HF_ENDPOINT=a.base, HF_TOKEN=a.token, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HOME=tempfile.mkdtemp(prefix="hfhome-", dir=a.tmp))
    env.pop("HF_HUB_DISABLE_XET", None)
    try:
        p = subprocess.run([a.python or sys.executable, os.path.abspath(__file__), "xet-upload", a.base, a.token, a.repo, str(size)],
                           env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"no answer in {timeout:.0f} s"
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        return "failed: " + (err[-1][:160] if err else f"exit {p.returncode}")
    r = json.loads(p.stdout.decode().strip().splitlines()[-1])
    return "200" if r.get("xet") else "200 (not through Xet)"


def xet_deadline(declared):
    """When the server cuts a Xet body of this announced size: 30 s + size / 64 KiB/s
    (crates/wharf-hub/src/xet.rs, upload_deadline)."""
    return 30 + declared // (64 * 1024)


def small_commit(a, label):
    body = ndjson([
        {"key": "header", "value": {"summary": f"probe {label}", "description": ""}},
        {"key": "file", "value": {"path": f"probe/{label}-{uuid.uuid4().hex[:8]}.txt", "content": base64.b64encode(b"probe\n").decode(), "encoding": "base64"}},
    ])
    s, r, d = once(a.base, "POST", f"/api/models/{a.repo}/commit/main", a.token, body, {"Content-Type": "application/x-ndjson"}, timeout=a.window + 60)
    return s


def small_lfs(a):
    data = os.urandom(MIB)
    s, step, msg = lfs_upload(a.base, a.token, a.repo, data, len(data), hashlib.sha256(data).hexdigest(), timeout=a.window + 60)
    return s if s == 200 else f"{step} {s}"


def cmd_slow(a):
    u = urllib.parse.urlsplit(a.base)
    addr = (u.hostname, u.port)
    host = u.netloc
    auth = f"Authorization: Bearer {a.token}\r\n"

    # Signed LFS upload URLs for random objects of the announced size.
    n_lfs = a.lfs + a.silent
    hrefs = []
    if n_lfs:
        objs = [{"oid": hashlib.sha256(os.urandom(16)).hexdigest(), "size": a.lfs_bytes} for _ in range(n_lfs)]
        s, r, d = once(a.base, "POST", f"/{a.repo}.git/info/lfs/objects/batch", a.token,
                       json.dumps({"operation": "upload", "transfers": ["basic"], "objects": objs, "hash_algo": "sha256"}).encode(),
                       {"Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"})
        if s != 200:
            raise SystemExit(f"LFS batch failed: HTTP {s}: {message_of(r, d)}")
        for o in json.loads(d)["objects"]:
            up = o["actions"]["upload"]
            hu = urllib.parse.urlsplit(up["href"])
            extra = "".join(f"{k}: {v}\r\n" for k, v in (up.get("header") or {}).items())
            hrefs.append((hu.path + "?" + hu.query, extra))
    xet_token = None
    if a.xorb or a.xorb_deadline:
        s, r, d = once(a.base, "GET", f"/api/models/{a.repo}/xet-write-token/main", a.token)
        if s != 200:
            raise SystemExit(f"Xet write token failed: HTTP {s}: {message_of(r, d)}")
        xet_token = json.loads(d)["accessToken"]

    def head_commit(n):
        return (f"POST /api/models/{a.repo}/commit/main HTTP/1.1\r\nHost: {host}\r\n{auth}"
                f"Content-Type: application/x-ndjson\r\nContent-Length: {n}\r\n\r\n").encode()

    def head_lfs(k, n):
        path, extra = hrefs[k]
        return (f"PUT {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Type: application/octet-stream\r\n"
                f"Content-Length: {n}\r\n\r\n").encode()

    def head_xorb(n):
        h = hashlib.sha256(os.urandom(16)).hexdigest()
        return (f"POST /api/xet/v1/xorbs/default/{h} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {xet_token}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n").encode()

    groups = {
        "xorb-deadline": {"target": "xorb", "declared": a.xorb_deadline_bytes, "rate": "1 B/s", "deadline_s": xet_deadline(a.xorb_deadline_bytes)},
        "commit": {"target": "commit", "declared": a.commit_bytes, "rate": "1 B/s"},
        "lfs": {"target": "lfs", "declared": a.lfs_bytes, "rate": "1 B/s"},
        "xorb": {"target": "xorb", "declared": a.xorb_bytes, "rate": "1 B/s", "deadline_s": xet_deadline(a.xorb_bytes)},
        "lfs-silent": {"target": "lfs", "declared": a.lfs_bytes, "rate": "16 B, then nothing"},
    }
    # Order of arrival: the small xorbs first, one second ahead (so that they get their memory
    # and meet their deadline), then the three large kinds interleaved, then the silent ones.
    # Which of the large ones get memory from the budget is up to the server's scheduling.
    plan = [("xorb-deadline", None)] * a.xorb_deadline
    for k in range(max(a.commit, a.lfs, a.xorb)):
        if k < a.lfs:
            plan.append(("lfs", None))
        if k < a.xorb:
            plan.append(("xorb", None))
        if k < a.commit:
            plan.append(("commit", None))
    plan += [("lfs-silent", None)] * a.silent

    sampler = Sampler(a.pid)
    clients, open_errors, lfs_k = [], collections.Counter(), 0
    log(f"slow: opening {len(plan)} slow-body requests, watching them for {a.window} s")
    t_start = time.monotonic()
    previous = None
    for g, _ in plan:
        if previous == "xorb-deadline" and g != previous:
            time.sleep(1.0)  # their reservations are made before the large ones arrive
        previous = g
        declared = groups[g]["declared"]
        try:
            if g == "commit":
                c = SlowClient(g, addr, head_commit(declared), declared, byte=b" ")
            elif g in ("lfs", "lfs-silent"):
                silent = g == "lfs-silent"
                c = SlowClient(g, addr, head_lfs(lfs_k, declared), declared, first=b"\0" * 16 if silent else b"", trickle=not silent)
                lfs_k += 1
            else:
                c = SlowClient(g, addr, head_xorb(declared), declared)
            clients.append(c)
        except OSError as e:
            open_errors[f"{g}: {type(e).__name__}"] += 1
    until = t_start + a.window
    # Normal traffic: another account's, in its own repository, when the script made one.
    p = argparse.Namespace(**vars(a))
    p.token, p.repo = a.probe_token or a.token, a.probe_repo or a.repo
    probes = {
        "GET /api/models": ProbeLoop("api", lambda: once(a.base, "GET", "/api/models", timeout=60)[0], until, 0.5),
        "small commit": ProbeLoop("commit", lambda: small_commit(p, "during"), until, 1.0),
        "LFS upload 1 MiB": ProbeLoop("lfs", lambda: small_lfs(p), until, 1.0),
        "Xet upload 256 KiB": ProbeLoop("xet", lambda: xet_probe(p, 256 * 1024, max(5.0, until - time.monotonic() + 30)), until, 1.0),
    }
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.sock, selectors.EVENT_READ, c)
    next_tick = time.monotonic()
    while time.monotonic() < until:
        timeout = max(0.0, min(next_tick, until) - time.monotonic())
        for key, _ in sel.select(timeout=timeout):
            c = key.data
            c.read_answer()
            if c.outcome is not None:
                sel.unregister(key.fileobj)
        if time.monotonic() >= next_tick:
            next_tick += 1.0
            for c in clients:
                if c.outcome is None:
                    c.tick()
                    if c.outcome is not None:
                        sel.unregister(c.sock)
    held_at_end = collections.Counter()
    for c in clients:
        if c.outcome is None:
            held_at_end[c.group] += 1
            c.finish(f"still open at {a.window} s")
    sel.close()
    mem = sampler.finish()
    for p in probes.values():
        p.join()
    log("slow: slow clients closed; recovery probes")
    time.sleep(2.0)
    recovery = {}
    # Recovery: the attacker's own account can upload again.
    for name, fn in (("small commit", lambda: small_commit(a, "after")), ("LFS upload 1 MiB", lambda: small_lfs(a)),
                     ("Xet upload 256 KiB", lambda: xet_probe(a, 256 * 1024, 120))):
        t0 = time.monotonic()
        try:
            o = fn()
        except Exception as e:
            o = type(e).__name__
        recovery[name] = {"outcome": str(o), "seconds": round(time.monotonic() - t0, 2)}

    out_groups = {}
    for g, meta in groups.items():
        cs = [c for c in clients if c.group == g]
        if not cs:
            continue
        by = collections.defaultdict(list)
        msgs = {}
        for c in cs:
            by[c.outcome].append(c.ended)
            if c.message:
                msgs.setdefault(c.outcome, c.message)
        out_groups[g] = dict(meta, count=len(cs), outcomes={
            o: {"n": len(t), "end_s_min": round(min(t), 1), "end_s_median": round(pctl(t, 50), 1), "end_s_max": round(max(t), 1),
                "message": msgs.get(o, "")}
            for o, t in sorted(by.items())
        }, bytes_sent_max=max(c.sent for c in cs))
    out = {
        "phase": "slow",
        "window_s": a.window,
        "opened": len(clients),
        "open_errors": dict(open_errors),
        "groups": out_groups,
        "held_at_end": dict(held_at_end),
        "probes": {name: p.summary(t_start) for name, p in probes.items()},
        "recovery": recovery,
        "memory": mem,
    }
    print(json.dumps(out))


def cmd_xet_upload(a):
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url

    api = HfApi(endpoint=a.base, token=a.token)
    path = f"probe/xet-{uuid.uuid4().hex[:12]}.bin"
    t0 = time.monotonic()
    api.upload_file(path_or_fileobj=os.urandom(a.size), path_in_repo=path, repo_id=a.repo, commit_message="xet probe")
    seconds = time.monotonic() - t0
    meta = get_hf_file_metadata(hf_hub_url(a.repo, path, endpoint=a.base), token=a.token)
    print(json.dumps({"seconds": round(seconds, 2), "xet": meta.xet_file_data is not None}))


# ------------------------------------------------------------------------------ report


def fmt(v, nd=0):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def mem_line(m):
    return (f"peak RSS {m['peak_mib']} MiB (VmHWM {m['vmhwm_mib']}, sampled {m['rss_peak_sampled_mib']}); RSS at start {m['rss_start_mib']} MiB, "
            f"at end {m['rss_end_mib']} MiB; threads max {m.get('threads_max')}, at end {m.get('threads_end')}; fds max {m['fds_max']}")


def cmd_report(a):
    meta = json.load(open(a.meta))
    phases = {}
    for path in a.phases:
        try:
            d = json.load(open(path))
        except (OSError, ValueError):
            continue
        phases[d.get("label") or d["phase"]] = d
    L = []
    p = L.append
    p(f"Wharf load benchmark, {meta['date']}")
    p(f"binary:  {meta['binary']}")
    p(f"machine: {meta['machine']}")
    p(f"others:  {meta['others']}")
    p(f"server:  {meta['server']}")
    if meta.get("log_errors") is not None:
        p(f"server log: {meta['log_errors']} ERROR and {meta['log_warnings']} WARN lines" + (f"; first ERROR: {meta['log_first_error']}" if meta.get("log_first_error") else ""))
    p("")
    rows = []  # (figure, value, target, verdict)

    def verdict(ok):
        return "ok" if ok else "MISSED"

    w = phases.get("writers")
    if w:
        p(f"1. Writers: {w['writers']} writers x {w['commits_each']} commits on one branch (parentCommit = last head seen; on 412 re-read the head and retry)")
        p(f"   acknowledged {w['acked']} of {w['commits_wanted']} in {w['seconds']} s ({w['commits_per_s']} commits/s); gave up: {w['gave_up']}")
        p(f"   commit requests {w['commit_requests']}: statuses {w['statuses']}; head reads {w['head_reads']}: {w['head_statuses']}")
        p(f"   history of main: {w['history_len']} commits ({w['history_before']} before the run); acknowledged but not reachable (lost): {w['lost']}; files of acknowledged commits missing from main: {w['files_missing']}; in history but not acknowledged: {w['history_unacked']}")
        p(f"   attempts per commit: mean {w['attempts_mean']}, max {w['attempts_max']}; first try -> ack p50 {w['ack'].get('p50_ms')} ms, p95 {w['ack'].get('p95_ms')} ms, max {w['ack'].get('max_ms')} ms")
        p(f"   request latency: 200 p50 {w['request_200'].get('p50_ms')} / p95 {w['request_200'].get('p95_ms')} ms; 412 p50 {w['request_412'].get('p50_ms')} / p95 {w['request_412'].get('p95_ms')} ms")
        if w["errors"] or w["samples"]:
            p(f"   errors: {w['errors']}; sample messages: {w['samples']}")
        p(f"   server {mem_line(w['memory'])}")
        rows += [
            ("writers x commits", f"{w['writers']} x {w['commits_each']}", "", ""),
            ("commits acknowledged", f"{w['acked']} / {w['commits_wanted']}", f"{w['commits_wanted']}", verdict(w["acked"] == w["commits_wanted"])),
            ("commits lost", w["lost"] + w["files_missing"], "0", verdict(w["lost"] == 0 and w["files_missing"] == 0)),
            ("5xx: commits / head reads", f"{w['n5xx_commit']} / {w['n5xx_head']}", "0", verdict(w["n5xx_commit"] + w["n5xx_head"] == 0)),
            ("412 (stale parent)", w["n412"], "(info)", ""),
            ("other errors", w["other_errors"], "0", verdict(w["other_errors"] == 0)),
            ("writers: time, commits/s", f"{w['seconds']} s, {w['commits_per_s']}/s", "", ""),
            ("writers: server peak RSS", f"{w['memory']['peak_mib']} MiB", "", ""),
        ]
        p("")
    d = phases.get("wharf")
    n = phases.get("nginx")
    if d:
        p(f"2. Downloads: {d['count']} concurrent GET of a {d['size'] / MIB:.0f} MiB LFS file (curl, to the end)")
        for x in (d, n):
            if not x:
                continue
            p(f"   {x['label']:6}: {x['complete']}/{x['count']} complete with the right length (codes {x['codes']}); sha256 checked {x['hash_ok']}/{x['hash_checks']}; "
              f"{x['seconds']} s, aggregate {fmt(x['aggregate_MBps'])} MB/s; per client {x['client_MBps_min']}-{x['client_MBps_max']} MB/s (median {x['client_MBps_median']}); "
              f"first byte p50 {x['ttfb'].get('p50_ms')} ms, max {x['ttfb'].get('max_ms')} ms")
            if x["errors"]:
                p(f"           errors: {x['errors']}")
        p(f"   wharf {mem_line(d['memory'])}")
        if n and n.get("reference_memory"):
            p(f"   nginx worker peak RSS {n['reference_memory'][0]['peak_mib']} MiB")
        ok = d["complete"] == d["count"] and d["hash_ok"] == d["hash_checks"]
        rows += [
            ("downloads complete", f"{d['complete']} / {d['count']}", f"{d['count']}", verdict(ok)),
            ("downloads: aggregate MB/s", fmt(d["aggregate_MBps"]) + (f" (nginx {fmt(n['aggregate_MBps'])})" if n else ""), "(info)", ""),
            ("downloads: server peak RSS", f"{d['memory']['peak_mib']} MiB", "< 200 MB", verdict(d["memory"]["peak_mib"] * MIB < 200e6)),
        ]
        p("")
    i = phases.get("idle")
    if i:
        p(f"3. Idle connections: {i['idle']} silent + {i['partial']} half-open (partial request head), opened in {i['open_seconds']} s; open errors {i['open_errors'] or 0}")
        p(f"   server while held: {i['server_held']['fds']} fds, RSS {i['server_held']['rss_mib']} MiB (before: {i['server_before']['fds']} fds, {i['server_before']['rss_mib']} MiB; after drops: {i['server_end']['fds']} fds, {i['server_end']['rss_mib']} MiB)")
        for label, s in (("baseline", i["baseline"]), ("while held", i["loaded"])):
            p(f"   {i['probes']} x GET /api/models {label:10}: {s['n']} ok, p50 {s.get('p50_ms')} ms, p95 {s.get('p95_ms')} ms, max {s.get('max_ms')} ms; failures {s['failures'] or 0}")
        x = i["watch"]
        p(f"   GET /api/models every 0.2 s from opening to the last drop: {x['n']} ok, p50 {x.get('p50_ms')} ms, p95 {x.get('p95_ms')} ms, max {x.get('max_ms')} ms; failures {x['failures'] or 0}")
        for kind, x in i["drops"].items():
            p(f"   {kind:8}: {x['dropped']}/{x['opened']} dropped by the server, after {x['drop_s_min']}-{x['drop_s_max']} s (median {x['drop_s_median']}); before the timeout: {x['dropped_before_timeout']}; still open: {x['still_open']}")
        p(f"   how they ended: {i['how']}")
        p(f"   server {mem_line(i['memory'])}")
        held_ok = i["loaded"]["n"] == i["probes"] and not i["watch"]["failures"] and (i["watch"].get("max_ms") or 0) < a.stall_ms
        drops_ok = all(x["still_open"] == 0 and x["dropped"] == x["opened"] and x["dropped_before_timeout"] == 0 for x in i["drops"].values())
        rows += [
            ("idle connections held", f"{i['opened']} ({i['server_held']['fds']} server fds)", f"{i['idle'] + i['partial']}",
             # held by the server, not waiting in the kernel's backlog
             verdict(i["opened"] == i["idle"] + i["partial"] and (i["server_held"]["fds"] or 0) - (i["server_before"]["fds"] or 0) >= i["opened"])),
            ("  GET p50 / p95 while held", f"{i['loaded'].get('p50_ms')} / {i['loaded'].get('p95_ms')} ms ({i['loaded']['n']}/{i['probes']} ok; whole phase max {i['watch'].get('max_ms')} ms, {sum(i['watch']['failures'].values())} failed)",
             f"baseline {i['baseline'].get('p50_ms')} / {i['baseline'].get('p95_ms')}", verdict(held_ok)),
            ("  server RSS while held", f"{i['server_held']['rss_mib']} MiB", "", ""),
            ("  dropped at header timeout", " / ".join(f"{x['dropped']}/{x['opened']} at {x['drop_s_min']}-{x['drop_s_max']} s" for x in i["drops"].values()), f"{i['header_timeout_s']} s", verdict(drops_ok)),
        ]
        p("")
    s = phases.get("slow")
    if s:
        p(f"4. Slow-body clients, watched for {s['window_s']} s (all on one server at once); open errors {s['open_errors'] or 0}")
        for g, x in s["groups"].items():
            dl = f" (server deadline {x['deadline_s']} s)" if x.get("deadline_s") else ""
            p(f"   {g:14} {x['count']:3} x {x['target']:6} announcing {x['declared']:>10} bytes, {x['rate']}{dl}:")
            for o, y in x["outcomes"].items():
                msg = f"  \"{y['message'][:90]}\"" if y["message"] else ""
                p(f"       {y['n']:3} {o:28} after {y['end_s_min']}-{y['end_s_max']} s{msg}")
        p("   normal traffic meanwhile:")
        for name, x in s["probes"].items():
            p(f"     {name:20} {x['ok']}/{x['n']} ok {x['outcomes']}; ok p50 {x['ok_latency'].get('p50_ms')} ms, p95 {x['ok_latency'].get('p95_ms')} ms, max of all {x['all_latency'].get('max_ms')} ms")
            bad = [t for t in x["timeline"] if t[1] != "200" or t[2] * 1000 >= a.stall_ms]
            if bad:
                p("         failed or slow (start s, outcome, seconds): " + ", ".join(f"{t[0]} {t[1]} {t[2]}" for t in bad[:8]) + (" ..." if len(bad) > 8 else ""))
        p(f"   after the slow clients left: " + "; ".join(f"{k} {v['outcome']} in {v['seconds']} s" for k, v in s["recovery"].items()))
        p(f"   server {mem_line(s['memory'])}")
        # Normal traffic must succeed, and not wait behind the slow clients either (rows below).
        held = sum(s["held_at_end"].values())
        rows += [
            ("slow clients", "%d (%s)" % (s["opened"], ", ".join("%s %d" % (g, x["count"]) for g, x in s["groups"].items())), "", ""),
            ("  still held at end of window", "%d (%s)" % (held, ", ".join("%s %d" % (g, k) for g, k in s["held_at_end"].items()) or "none"), "0", verdict(held == 0)),
        ]
        for k, x in s["probes"].items():
            worst = x["all_latency"].get("max_ms") or 0
            rows.append((f"  {k} meanwhile", f"{x['ok']}/{x['n']} ok, slowest {worst / 1000:.1f} s" if worst >= 1000 else f"{x['ok']}/{x['n']} ok, slowest {worst:.0f} ms",
                         f"all ok, < {a.stall_ms / 1000:.0f} s", verdict(x["ok"] == x["n"] and worst < a.stall_ms)))
        rows += [
            ("  server peak RSS", f"{s['memory']['peak_mib']} MiB", "", ""),
        ]
        p("")
    p("Summary")
    width = max(len(r[0]) for r in rows) if rows else 20
    vw = max([len(str(r[1])) for r in rows] + [5])
    p(f"  {'figure':{width}}  {'value':{vw}}  {'target':18} ")
    for r in rows:
        p(f"  {r[0]:{width}}  {str(r[1]):{vw}}  {str(r[2]):18} {r[3]}")
    p("")
    p(f"command: {meta['command']}")
    text = "\n".join(L) + "\n"
    sys.stdout.write(text)
    with open(a.out, "w") as f:
        f.write(text)


# ------------------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("writers")
    w.add_argument("base"), w.add_argument("token"), w.add_argument("repo")
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--writers", type=int, default=32)
    w.add_argument("--commits", type=int, default=20)
    w.add_argument("--max-attempts", type=int, default=2000)
    u = sub.add_parser("upload")
    for x in ("base", "token", "repo", "file", "path"):
        u.add_argument(x)
    d = sub.add_parser("downloads")
    d.add_argument("url")
    d.add_argument("--label", default="wharf")
    d.add_argument("--pid", type=int, required=True)
    d.add_argument("--extra-pid", type=int, action="append", help="another process to sample (nginx's worker)")
    d.add_argument("--header", action="append")
    d.add_argument("--count", type=int, default=200)
    d.add_argument("--size", type=int, required=True)
    d.add_argument("--sha256", required=True)
    d.add_argument("--hash-checks", type=int, default=4)
    i = sub.add_parser("idle")
    i.add_argument("base")
    i.add_argument("--pid", type=int, required=True)
    i.add_argument("--idle", type=int, default=1000)
    i.add_argument("--partial", type=int, default=1000)
    i.add_argument("--probes", type=int, default=200)
    i.add_argument("--timeout", type=float, default=30.0, help="the server's header timeout")
    i.add_argument("--grace", type=float, default=10.0)
    s = sub.add_parser("slow")
    s.add_argument("base"), s.add_argument("token"), s.add_argument("repo")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--window", type=float, default=90.0)
    s.add_argument("--probe-token", help="the normal traffic's token (default: the slow clients')")
    s.add_argument("--probe-repo", help="the normal traffic's repository (default: REPO)")
    s.add_argument("--commit", type=int, default=50)
    s.add_argument("--lfs", type=int, default=50)
    s.add_argument("--xorb", type=int, default=50)
    s.add_argument("--xorb-deadline", type=int, default=5)
    s.add_argument("--silent", type=int, default=5)
    s.add_argument("--commit-bytes", type=int, default=256 * MIB)
    s.add_argument("--lfs-bytes", type=int, default=1 << 30)
    s.add_argument("--xorb-bytes", type=int, default=64 * MIB)
    s.add_argument("--xorb-deadline-bytes", type=int, default=128 * 1024)
    s.add_argument("--python", help="Python with huggingface_hub for the Xet probe")
    s.add_argument("--tmp", default=None)
    x = sub.add_parser("xet-upload")
    x.add_argument("base"), x.add_argument("token"), x.add_argument("repo"), x.add_argument("size", type=int)
    r = sub.add_parser("report")
    r.add_argument("out"), r.add_argument("meta"), r.add_argument("phases", nargs="*")
    r.add_argument("--stall-ms", type=float, default=5000, help="slowest acceptable normal request during the slow phase")
    a = ap.parse_args()
    {"writers": cmd_writers, "upload": cmd_upload, "downloads": cmd_downloads, "idle": cmd_idle, "slow": cmd_slow,
     "xet-upload": cmd_xet_upload, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
