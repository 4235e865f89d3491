#!/usr/bin/env bash
# Wharf load benchmark: many writers on one branch, many concurrent large downloads, idle and
# half-open connections, slow-body clients; one fresh server, figures in one table at the end.
# See bench/README.md.
#
#   bench/load.sh                          # the issue's numbers (32 x 20 commits, 200 x 1 GiB, ...)
#   BENCH_LOAD_QUICK=1 bench/load.sh       # smoke run, under 2 minutes once the binary is built
#
# Environment (defaults: full run / quick run):
#   BENCH_WRITERS (32/8), BENCH_COMMITS per writer (20/5)
#   BENCH_SIZE_MB size of the downloaded file (1024/64), BENCH_DOWNLOADS concurrent GETs (200/20),
#   BENCH_HASH_CHECKS downloads whose sha256 is checked (4/2), BENCH_NGINX=0 skips the nginx reference
#   BENCH_IDLE silent connections (1000/100), BENCH_PARTIAL half-open ones (= BENCH_IDLE),
#   BENCH_PROBES latency probes (200/50)
#   BENCH_SLOW slow clients per target: commit, LFS, xorb (50/10), BENCH_SLOW_SECS window (90/35);
#   per target: BENCH_SLOW_COMMIT, BENCH_SLOW_LFS, BENCH_SLOW_XORB (default BENCH_SLOW)
#   BENCH_PHASES subset of writers,downloads,idle,slow
#   BENCH_SERVER_NOFILE soft open-files limit of the server (default: inherited)
#   WHARF_BIN, BENCH_TMP, BENCH_KEEP=1 (see bench/lib.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=${BENCH_LOAD_QUICK:-0}
q() { if [[ $QUICK == 1 ]]; then echo "$2"; else echo "$1"; fi; } # full quick
WRITERS=${BENCH_WRITERS:-$(q 32 8)}
COMMITS=${BENCH_COMMITS:-$(q 20 5)}
SIZE_MB=${BENCH_SIZE_MB:-$(q 1024 64)}
DOWNLOADS=${BENCH_DOWNLOADS:-$(q 200 20)}
HASH_CHECKS=${BENCH_HASH_CHECKS:-$(q 4 2)}
NGINX_REF=${BENCH_NGINX:-1}
IDLE=${BENCH_IDLE:-$(q 1000 100)}
PARTIAL=${BENCH_PARTIAL:-$IDLE}
PROBES=${BENCH_PROBES:-$(q 200 50)}
SLOW=${BENCH_SLOW:-$(q 50 10)}
SLOW_SECS=${BENCH_SLOW_SECS:-$(q 90 35)}
PHASES=${BENCH_PHASES:-writers,downloads,idle,slow}
for v in WRITERS COMMITS SIZE_MB DOWNLOADS HASH_CHECKS IDLE PARTIAL PROBES SLOW SLOW_SECS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
has_phase() { [[ ,$PHASES, == *,$1,* ]]; }

# ---------------------------------------------------------------- tools
missing=()
command -v curl >/dev/null || missing+=(curl)
NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
if [[ $NGINX_REF == 1 && -z $NGINX ]] && has_phase downloads; then missing+=(nginx-light); fi
if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    [[ $(id -u) == 0 ]] || die "need root to install ${missing[*]} (or install them first)"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

# The driver and the server each hold a few thousand sockets in the idle phase.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cpu_busy() { # share of CPU time the whole machine was busy over one second, %
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%.0f", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

bench_venv
bench_setup
HELPER=$ROOT/bench/load_bench.py
BUSY_BEFORE=$(cpu_busy)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "binary: $WHARF ($WHARF_VERSION, rev $GIT_REV); machine ${BUSY_BEFORE}% busy, load $LOAD_BEFORE"
# A fresh server process (same data folder) for every phase, so that each phase's peak RSS is
# its own and not what an earlier phase left behind.
start_server() {
    if [[ -n ${BENCH_SERVER_NOFILE:-} ]]; then
        # The server inherits the limit; the driver gets its own back.
        local own
        own=$(ulimit -S -n)
        ulimit -S -n "$BENCH_SERVER_NOFILE"
        bench_start_server
        ulimit -S -n "$own"
    else
        bench_start_server
    fi
}
restart_server() {
    stop_pid "$WHARF_PID"
    WHARF_PID=""
    start_server
    log "server restarted: pid $WHARF_PID on $BASE, RSS $(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$WHARF_PID/status") MiB"
}
start_server
SERVER_NOFILE=$(awk '/^Max open files/ { print $4 }' "/proc/$WHARF_PID/limits")
SERVER_RSS0=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$WHARF_PID/status")
log "server: pid $WHARF_PID on $BASE, open files limit $SERVER_NOFILE, RSS $SERVER_RSS0 MiB"

# One phase: runs the helper, keeps its last line (JSON) in $TMP/phase-NAME.json. A failed phase
# is reported and the others still run.
FAILED=()
phase() { # name args...
    local name=$1
    shift
    if "$PY" "$HELPER" "$@" >"$TMP/phase-$name.out"; then
        tail -n1 "$TMP/phase-$name.out" >"$TMP/phase-$name.json"
    else
        log "phase $name FAILED (exit $?)"
        FAILED+=("$name")
    fi
    kill -0 "$WHARF_PID" 2>/dev/null || die "the server died during phase $name: $(tail -n 20 "$TMP/wharf.log")"
}

# ---------------------------------------------------------------- 1. writers
if has_phase writers && ((WRITERS > 0 && COMMITS > 0)); then
    bench_create_repo load
    log "phase 1: $WRITERS writers x $COMMITS commits on bench/load@main"
    phase writers writers "$BASE" "$TOKEN" bench/load --pid "$WHARF_PID" --writers "$WRITERS" --commits "$COMMITS"
fi

# ---------------------------------------------------------------- 2. downloads
NGINX_PID=""
stop_nginx() { stop_pid "$NGINX_PID"; NGINX_PID=""; }
if has_phase downloads && ((DOWNLOADS > 0)); then
    bench_create_repo big
    log "phase 2: writing a ${SIZE_MB} MiB random file, uploading it with LFS"
    dd if=/dev/urandom of="$TMP/big.bin" bs=1M count="$SIZE_MB" status=none
    UP=$("$PY" "$HELPER" upload "$BASE" "$TOKEN" bench/big "$TMP/big.bin" big.bin | tail -n1)
    OID=$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["oid"])' <<<"$UP")
    SIZE=$(stat -c %s "$TMP/big.bin")
    rm -f "$TMP/big.bin" # the server's copy is the one read from now on
    OBJ=$DATA/lfs/objects/${OID:0:2}/${OID:2:2}/$OID
    [[ -f $OBJ ]] || die "stored object not found at $OBJ"
    cat "$OBJ" >/dev/null # page cache: the comparison is about serving, not the disk
    restart_server # the upload's buffers are not the downloads'
    log "phase 2: $DOWNLOADS concurrent downloads from wharf"
    phase downloads-wharf downloads "$BASE/bench/big/resolve/main/big.bin" --label wharf --pid "$WHARF_PID" \
        --header "Authorization: Bearer $TOKEN" --count "$DOWNLOADS" --size "$SIZE" --sha256 "$OID" --hash-checks "$HASH_CHECKS"
    if [[ $NGINX_REF == 1 ]]; then
        NPORT=$(free_port)
        mkdir -p "$TMP/nginx"
        cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$NPORT backlog=4096;
        root $DATA/lfs/objects;
    }
}
EOF
        "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
        NGINX_PID=$!
        BENCH_PIDS+=("$NGINX_PID")
        NGINX_URL=http://127.0.0.1:$NPORT/${OID:0:2}/${OID:2:2}/$OID
        for ((i = 0; i < 100; i++)); do
            curl -sf -o /dev/null -r 0-0 "$NGINX_URL" && break
            kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited during start-up: $(cat "$TMP/nginx/error.log")"
            sleep 0.05
        done
        NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n1 || true)
        log "phase 2: the same $DOWNLOADS downloads from nginx (sendfile, 1 worker)"
        phase downloads-nginx downloads "$NGINX_URL" --label nginx --pid "$WHARF_PID" --extra-pid "${NGINX_WORKER:-$NGINX_PID}" \
            --count "$DOWNLOADS" --size "$SIZE" --sha256 "$OID" --hash-checks "$HASH_CHECKS"
        stop_nginx
    fi
fi

# ---------------------------------------------------------------- 3. idle connections
if has_phase idle && ((IDLE + PARTIAL > 0)); then
    restart_server
    log "phase 3: $IDLE silent + $PARTIAL half-open connections (takes the 30 s header timeout and more)"
    phase idle idle "$BASE" --pid "$WHARF_PID" --idle "$IDLE" --partial "$PARTIAL" --probes "$PROBES"
fi

# ---------------------------------------------------------------- 4. slow bodies
if has_phase slow && ((SLOW + ${BENCH_SLOW_COMMIT:-0} + ${BENCH_SLOW_LFS:-0} + ${BENCH_SLOW_XORB:-0} > 0)); then
    # The slow clients are one account's (an attacker holding a write token); the normal
    # traffic that must not notice them is another account's, in its own repository.
    "$WHARF" --data "$DATA" user add other --email o@x --password pw >/dev/null 2>&1 || true
    OTHER_TOKEN=$("$WHARF" --data "$DATA" token add other --role write | tail -n1)
    restart_server
    bench_create_repo slow
    bench_create_repo probe "$OTHER_TOKEN"
    log "phase 4: $SLOW slow clients per target for $SLOW_SECS s"
    SILENT=5 DEADLINE=5
    [[ $QUICK == 1 ]] && SILENT=2 DEADLINE=2
    phase slow slow "$BASE" "$TOKEN" bench/slow --pid "$WHARF_PID" --window "$SLOW_SECS" \
        --commit "${BENCH_SLOW_COMMIT:-$SLOW}" --lfs "${BENCH_SLOW_LFS:-$SLOW}" --xorb "${BENCH_SLOW_XORB:-$SLOW}" --silent "${BENCH_SILENT:-$SILENT}" --xorb-deadline "${BENCH_XORB_DEADLINE:-$DEADLINE}" \
        --probe-token "$OTHER_TOKEN" --probe-repo other/probe --python "$PY" --tmp "$TMP"
fi

# ---------------------------------------------------------------- report
BUSY_AFTER=$(cpu_busy)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/load-$STAMP.txt
CMD="$(for v in WHARF_BIN BENCH_LOAD_QUICK BENCH_WRITERS BENCH_COMMITS BENCH_SIZE_MB BENCH_DOWNLOADS BENCH_HASH_CHECKS BENCH_NGINX \
    BENCH_IDLE BENCH_PARTIAL BENCH_PROBES BENCH_SLOW BENCH_SLOW_COMMIT BENCH_SLOW_LFS BENCH_SLOW_XORB BENCH_SLOW_SECS BENCH_PHASES BENCH_SERVER_NOFILE; do
    if [[ -n ${!v:-} ]]; then printf '%s=%s ' "$v" "${!v}"; fi
done)bench/load.sh"
"$PY" - "$TMP/meta.json" "$TMP/wharf.log" <<EOF
import json, re, sys
log = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in open(sys.argv[2], errors="replace")]
errors = [line for line in log if " ERROR " in line or line.startswith("internal error")]
json.dump({
    "log_errors": sum(1 for line in log if " ERROR " in line),
    "log_warnings": sum(1 for line in log if " WARN " in line),
    "log_first_error": " | ".join(errors[:2])[:300],
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "binary": "$WHARF ($WHARF_VERSION, rev $GIT_REV)",
    "machine": "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)",
    "others": "CPU ${BUSY_BEFORE}% busy before, ${BUSY_AFTER}% after (load average $LOAD_BEFORE -> $LOAD_AFTER); client and server share the machine",
    "server": "fresh data folder, a new server process for every phase, WHARF_RATE_LIMITS=off, open files limit $SERVER_NOFILE, RSS after start $SERVER_RSS0 MiB",
    "command": "$CMD",
}, open(sys.argv[1], "w"))
EOF
"$PY" "$HELPER" report "$OUT" "$TMP/meta.json" "$TMP"/phase-*.json
if ((${#FAILED[@]})); then
    log "phases that failed: ${FAILED[*]} (see above)"
fi
log "written to $OUT"
((${#FAILED[@]} == 0))
