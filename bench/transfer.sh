#!/usr/bin/env bash
# Wharf transfer benchmark: large-file download and upload against physical floors, plus the
# server's peak memory. Everything runs on this machine, in one go; see bench/README.md.
#
#   bench/transfer.sh                      # 1 GiB test file
#   BENCH_SIZE_MB=64 bench/transfer.sh     # quick smoke run
#
# Environment:
#   WHARF_BIN      wharf binary to test (default: target/release/wharf, rebuilt when stale)
#   BENCH_SIZE_MB  size of the test file in MiB (default 1024)
#   BENCH_RUNS     runs per measurement (default 3)
#   BENCH_TMP      parent folder for the temporary data (default: /tmp); the data folder, the
#                  test file and the floor's copy all live there, on one filesystem
#   BENCH_KEEP=1   keep the temporary folder (and server logs) after the run
#   BENCH_WAIT_IDLE=N  first wait up to N seconds for the machine to be less than 20 % busy
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SIZE_MB=${BENCH_SIZE_MB:-1024}
RUNS=${BENCH_RUNS:-3}
SIZE=$((SIZE_MB * 1024 * 1024))

[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MB must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer"

# ---------------------------------------------------------------- tools
NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
missing=()
[[ -n $NGINX ]] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    [[ $(id -u) == 0 ]] || die "need root to install ${missing[*]} (or install them first)"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
[[ -x $NGINX ]] || die "nginx not found after installation"

# ---------------------------------------------------------------- wharf binary
bench_binary

# ---------------------------------------------------------------- temp space and cleanup
TMP=$(mktemp -d "${BENCH_TMP:-/tmp}/wharf-bench.XXXXXX")
DATA=$TMP/data
FILE=$TMP/big.bin
WHARF_PID=""
NGINX_PID=""

cleanup() {
    local rc=$?
    stop_pid "$WHARF_PID"
    stop_pid "$NGINX_PID"
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cpu_diff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

ms() { awk -v t="$1" 'BEGIN { printf "%.0f", t * 1000 }'; }

# Share of CPU time the whole machine spent busy over one second (others' work disturbs us).
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%.0f", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

# CPU seconds a process used so far (user + system, with its waited-for children).
CLK_TCK=$(getconf CLK_TCK)
cpu_s() { awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / hz }' "/proc/$1/stat"; }

# Current RSS of a process, MiB (peak: hwm_mb in lib.sh).
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- wharf set-up
BUSY_BEFORE=$(cpu_busy)
if [[ ${BENCH_WAIT_IDLE:-0} =~ ^[1-9][0-9]*$ ]] && ((BUSY_BEFORE >= 20)); then
    log "machine ${BUSY_BEFORE}% busy; waiting up to ${BENCH_WAIT_IDLE} s for it to calm down"
    deadline=$((SECONDS + BENCH_WAIT_IDLE))
    while ((BUSY_BEFORE >= 20 && SECONDS < deadline)); do
        sleep 4
        BUSY_BEFORE=$(cpu_busy)
    done
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
((BUSY_BEFORE < 20)) || log "WARNING: the machine is already ${BUSY_BEFORE}% busy (load $LOAD_BEFORE); figures will be noisy"
log "binary: $WHARF ($WHARF_VERSION, rev $GIT_REV)"
log "temp folder: $TMP ($(df -h --output=source,fstype "$TMP" | tail -n1 | tr -s ' '))"
"$WHARF" --data "$DATA" user add bench --email b@x --password pw >/dev/null
TOKEN=$("$WHARF" --data "$DATA" token add bench --role write | tail -n1)
[[ $TOKEN == hf_* ]] || die "unexpected token output: $TOKEN"
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
AUTH="Authorization: Bearer $TOKEN"

start_wharf() { # $1: log suffix
    # Background LFS-to-Xet conversion would compete with the timed transfers.
    WHARF_RATE_LIMITS=off WHARF_XET_CONVERT_DELAY=86400 WHARF_LOG=warn "$WHARF" --data "$DATA" serve --listen "127.0.0.1:$PORT" >"$TMP/wharf-$1.log" 2>&1 &
    WHARF_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        curl -sf -o /dev/null "$BASE/api/models" && return 0
        kill -0 "$WHARF_PID" 2>/dev/null || { cat "$TMP/wharf-$1.log" >&2; die "wharf exited during start-up"; }
        sleep 0.05
    done
    die "wharf did not answer GET /api/models within 10 s"
}

stop_wharf() {
    stop_pid "$WHARF_PID"
    WHARF_PID=""
}

create_repo() { # name
    curl -sS --fail-with-body -o /dev/null -H "$AUTH" -H 'Content-Type: application/json' \
        -d "{\"name\":\"$1\",\"type\":\"model\"}" "$BASE/api/repos/create" ||
        die "cannot create repo $1"
}

# ---------------------------------------------------------------- test file
log "writing a ${SIZE_MB} MiB test file from /dev/urandom"
dd if=/dev/urandom of="$FILE" bs=1M count="$SIZE_MB" status=none
sync
# The client computes the hash before the clock starts (like huggingface_hub does).
OID=$(openssl dgst -sha256 -r "$FILE" | cut -d' ' -f1)
[[ $OID =~ ^[0-9a-f]{64}$ ]] || die "cannot hash the test file"

# ---------------------------------------------------------------- phase 1: upload
# One server instance for the whole phase, so its VmHWM is the phase's peak RSS.
start_wharf upload
RSS_IDLE_UPLOAD=$(hwm_mb "$WHARF_PID")

# The whole LFS protocol, as huggingface_hub drives it; prints the elapsed seconds (total,
# batch, PUT, verify, commit) and the CPU seconds the server used meanwhile.
# Every run uses a fresh repository: an object already linked to a repo gets no upload action.
upload_once() { # repo name
    local repo=$1 resp href verify t0 t1 t2 t3 t4 code c0 c1
    create_repo "$repo"
    sync # no dirty pages left over from earlier work
    c0=$(cpu_s "$WHARF_PID")
    t0=$(now)
    resp=$(curl -sS --fail-with-body -H "$AUTH" \
        -H 'Accept: application/vnd.git-lfs+json' -H 'Content-Type: application/vnd.git-lfs+json' \
        -d "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$OID\",\"size\":$SIZE}],\"hash_algo\":\"sha256\"}" \
        "$BASE/bench/$repo.git/info/lfs/objects/batch") || die "batch request failed: $resp"
    # The action's fields in any order, with at most one level of nested objects ("header").
    local upload_re='"upload":\{([^{}]|\{[^{}]*\})*"href":"([^"]+)"'
    local verify_re='"verify":\{([^{}]|\{[^{}]*\})*"href":"([^"]+)"'
    if [[ $resp =~ $upload_re ]]; then
        href=${BASH_REMATCH[2]}
        if [[ $resp =~ $verify_re ]]; then verify=${BASH_REMATCH[2]}; else verify=""; fi
    else # other key orders: let python parse it (costs a few ms inside the clock)
        read -r href verify < <(python3 -c 'import json, sys
a = json.load(sys.stdin)["objects"][0].get("actions") or {}
print(a.get("upload", {}).get("href", ""), a.get("verify", {}).get("href", ""))' <<<"$resp")
    fi
    [[ -n $href ]] || die "batch answer has no upload action: $resp"
    t1=$(now)
    # -T streams the file (no buffering in curl); no Expect: 100-continue, like the Python client.
    code=$(curl -sS -o "$TMP/put.out" -w '%{http_code}' -H 'Expect:' -H 'Content-Type: application/octet-stream' \
        -T "$FILE" "$href") || die "upload PUT failed"
    [[ $code == 200 ]] || die "upload PUT answered $code: $(head -c 500 "$TMP/put.out")"
    t2=$(now)
    if [[ -n $verify ]]; then
        curl -sS --fail-with-body -o /dev/null -H "$AUTH" -H 'Content-Type: application/vnd.git-lfs+json' \
            -d "{\"oid\":\"$OID\",\"size\":$SIZE}" "$verify" || die "verify failed"
    fi
    t3=$(now)
    printf '{"key":"header","value":{"summary":"bench"}}\n{"key":"lfsFile","value":{"path":"big.bin","algo":"sha256","oid":"%s","size":%s}}\n' "$OID" "$SIZE" >"$TMP/commit.ndjson"
    curl -sS --fail-with-body -o "$TMP/commit.out" -H "$AUTH" -H 'Content-Type: application/x-ndjson' \
        --data-binary @"$TMP/commit.ndjson" "$BASE/api/models/bench/$repo/commit/main" ||
        die "commit failed: $(cat "$TMP/commit.out")"
    t4=$(now)
    c1=$(cpu_s "$WHARF_PID")
    # total, then the steps: batch, PUT, verify, commit; then the server's CPU seconds
    echo "$(elapsed "$t0" "$t4") $(elapsed "$t0" "$t1") $(elapsed "$t1" "$t2") $(elapsed "$t2" "$t3") $(elapsed "$t3" "$t4") $(cpu_diff "$c0" "$c1")"
}

# Floors: the server must hash every byte and write every byte durably; with two cores the two
# can overlap, so the floor is the slower of the two. The source file is in the page cache.
# (`sync FILE` fsyncs just that file: coreutils >= 8.24.)
hash_once() {
    local t0 t1
    t0=$(now)
    openssl dgst -sha256 "$FILE" >/dev/null
    t1=$(now)
    elapsed "$t0" "$t1"
}
copy_once() {
    local t0 t1
    rm -f "$DATA/x"
    sync
    t0=$(now)
    cp "$FILE" "$DATA/x"
    # fsync of this one file, like the server's: a bare `sync` would also flush whatever other
    # processes on the machine have dirtied, and charge it to the floor.
    sync "$DATA/x"
    t1=$(now)
    rm -f "$DATA/x"
    elapsed "$t0" "$t1"
}

# Pure SHA-256 speed, without file reading: a stricter floor, for information.
SHA_SPEED=$(openssl speed -evp sha256 -bytes 16384 -seconds 1 2>/dev/null | awk '/^sha256/ { sub(/k$/, "", $2); printf "%.0f", $2 / 1000 }')
cat "$FILE" >/dev/null # page cache
# One untimed round of each: on a thin-provisioned virtual disk the first write to fresh blocks
# can be several times slower than later ones, and that should not decide the comparison.
copy_once >/dev/null
upload_once bench-0 >/dev/null
UP=() HASH=() COPY=() PAIRED=() S_BATCH=() S_PUT=() S_VERIFY=() S_COMMIT=() CPU_UP=()
for ((r = 1; r <= RUNS; r++)); do # interleaved, so drift hits the floor and wharf alike
    HASH+=("$(hash_once)")
    COPY+=("$(copy_once)")
    steps=$(upload_once "bench-$r")
    read -r total batch put verify commit cpu <<<"$steps"
    UP+=("$total") S_BATCH+=("$batch") S_PUT+=("$put") S_VERIFY+=("$verify") S_COMMIT+=("$commit") CPU_UP+=("$cpu")
    PAIRED+=("$(awk -v u="$total" -v h="${HASH[-1]}" -v c="${COPY[-1]}" 'BEGIN { printf "%.3f", u / ((h > c) ? h : c) }')")
    log "upload run $r: wharf $(ms "$total") ms (batch $(ms "$batch"), PUT $(ms "$put"), verify $(ms "$verify"), commit $(ms "$commit"); server CPU ${cpu} s), sha256 $(ms "${HASH[-1]}") ms, cp+sync $(ms "${COPY[-1]}") ms"
done
RSS_UPLOAD=$(hwm_mb "$WHARF_PID")
stop_wharf

# The object as stored by the server: nginx serves this very file.
OBJ=$DATA/lfs/objects/${OID:0:2}/${OID:2:2}/$OID
[[ -f $OBJ ]] || die "stored object not found at $OBJ"
[[ $(stat -c %s "$OBJ") == "$SIZE" ]] || die "stored object has the wrong size"

# ---------------------------------------------------------------- phase 2: download
NPORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 64; }
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
        listen 127.0.0.1:$NPORT;
        root $DATA/lfs/objects;
    }
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
NGINX_PID=$!
NGINX_URL=http://127.0.0.1:$NPORT/${OID:0:2}/${OID:2:2}/$OID
for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null -r 0-0 "$NGINX_URL" && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx/error.log" >&2; die "nginx exited during start-up"; }
    sleep 0.05
done

start_wharf download
RSS_IDLE_DOWNLOAD=$(hwm_mb "$WHARF_PID")
WHARF_URL=$BASE/bench/bench-1/resolve/main/big.bin

fetch_once() { # url [header]: prints seconds; checks status and size
    local out code size t
    out=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' ${2:+-H "$2"} "$1") || die "GET $1 failed"
    read -r code size t <<<"$out"
    [[ $code == 200 && $size == "$SIZE" ]] || die "GET $1: status $code, $size bytes"
    echo "$t"
}

cat "$OBJ" >/dev/null # page cache
fetch_once "$WHARF_URL" "$AUTH" >/dev/null # warm-up (not counted)
fetch_once "$NGINX_URL" >/dev/null
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n1 || true)
NGINX_WORKER=${NGINX_WORKER:-$NGINX_PID}
DW=() DN=() CPU_DW=() CPU_DN=()
for ((r = 1; r <= RUNS; r++)); do # interleaved, so drift hits both alike
    c0=$(cpu_s "$WHARF_PID")
    DW+=("$(fetch_once "$WHARF_URL" "$AUTH")")
    c1=$(cpu_s "$WHARF_PID")
    CPU_DW+=("$(cpu_diff "$c0" "$c1")")
    c0=$(cpu_s "$NGINX_WORKER")
    DN+=("$(fetch_once "$NGINX_URL")")
    c1=$(cpu_s "$NGINX_WORKER")
    CPU_DN+=("$(cpu_diff "$c0" "$c1")")
    log "download run $r: wharf $(mbps "$SIZE" "${DW[-1]}") MB/s, nginx $(mbps "$SIZE" "${DN[-1]}") MB/s"
done
RSS_DOWNLOAD=$(hwm_mb "$WHARF_PID")
RSS_END=$(rss_mb "$WHARF_PID")
stop_wharf
stop_pid "$NGINX_PID"
NGINX_PID=""

# ---------------------------------------------------------------- report
BUSY_AFTER=$(cpu_busy) LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
DW_BEST=$(best_of "${DW[@]}") DN_BEST=$(best_of "${DN[@]}")
DW_MED=$(median_of "${DW[@]}") DN_MED=$(median_of "${DN[@]}")
UP_BEST=$(best_of "${UP[@]}") UP_MED=$(median_of "${UP[@]}")
HASH_BEST=$(best_of "${HASH[@]}") COPY_BEST=$(best_of "${COPY[@]}")
HASH_MED=$(median_of "${HASH[@]}") COPY_MED=$(median_of "${COPY[@]}")
FLOOR_BEST=$(awk -v a="$HASH_BEST" -v b="$COPY_BEST" 'BEGIN { print (a > b) ? a : b }')
FLOOR_MED=$(awk -v a="$HASH_MED" -v b="$COPY_MED" 'BEGIN { print (a > b) ? a : b }')
pass() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : (op == "<=") ? v <= t : v < t; print ok ? "ok" : "MISSED" }'; }

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/transfer-$STAMP.txt
{
    echo "Wharf transfer benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "binary:  $WHARF ($WHARF_VERSION, rev $GIT_REV)"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
    echo "disk:    $(df --output=source,fstype "$TMP" | tail -n1 | tr -s ' ')  (data folder, test file and cp target)"
    echo "others:  CPU ${BUSY_BEFORE}% busy before, ${BUSY_AFTER}% after (load average $LOAD_BEFORE -> $LOAD_AFTER)"
    echo "file:    $SIZE_MB MiB ($SIZE bytes) of random data, $RUNS runs each, page cache warm; MB = 10^6 bytes"
    echo
    printf '%-34s %12s %12s %7s %9s %s\n' metric wharf reference ratio target ""
    printf '%-34s %12s %12s %7s %9s %s\n' "download MB/s, best (vs nginx)" "$(mbps "$SIZE" "$DW_BEST")" "$(mbps "$SIZE" "$DN_BEST")" \
        "$(ratio "$DN_BEST" "$DW_BEST")" ">= 0.9" "$(pass "$(ratio "$DN_BEST" "$DW_BEST")" '>=' 0.9)"
    printf '%-34s %12s %12s %7s %9s %s\n' "download MB/s, median (vs nginx)" "$(mbps "$SIZE" "$DW_MED")" "$(mbps "$SIZE" "$DN_MED")" \
        "$(ratio "$DN_MED" "$DW_MED")" ">= 0.9" "$(pass "$(ratio "$DN_MED" "$DW_MED")" '>=' 0.9)"
    printf '%-34s %12s %12s %7s %9s %s\n' "upload ms, best (vs floor)" "$(ms "$UP_BEST")" "$(ms "$FLOOR_BEST")" \
        "$(ratio "$UP_BEST" "$FLOOR_BEST")" "<= 1.3" "$(pass "$(ratio "$UP_BEST" "$FLOOR_BEST")" '<=' 1.3)"
    printf '%-34s %12s %12s %7s %9s %s\n' "upload ms, median (vs floor)" "$(ms "$UP_MED")" "$(ms "$FLOOR_MED")" \
        "$(ratio "$UP_MED" "$FLOOR_MED")" "<= 1.3" "$(pass "$(ratio "$UP_MED" "$FLOOR_MED")" '<=' 1.3)"
    PAIRED_MED=$(median_of "${PAIRED[@]}")
    printf '%-34s %12s %12s %7s %9s %s\n' "upload, per-run ratio (median)" "" "" "$PAIRED_MED" "<= 1.3" "$(pass "$PAIRED_MED" '<=' 1.3)"
    SERIAL=$(awk -v a="$HASH_MED" -v b="$COPY_MED" 'BEGIN { print a + b }')
    printf '%-34s %12s %12s %7s %9s %s\n' "upload ms, median (vs serial)" "$(ms "$UP_MED")" "$(ms "$SERIAL")" "$(ratio "$UP_MED" "$SERIAL")" "(info)" ""
    printf '%-34s %12s\n' "upload MB/s, best" "$(mbps "$SIZE" "$UP_BEST")"
    echo
    echo "upload floor = max(openssl dgst -sha256 FILE, cp FILE DATA/x && sync DATA/x); serial = their sum:"
    printf '  sha256 (openssl)  best %6s ms  (%s MB/s)   runs: %s\n' "$(ms "$HASH_BEST")" "$(mbps "$SIZE" "$HASH_BEST")" "$(for t in "${HASH[@]}"; do printf '%s ' "$(ms "$t")"; done)"
    printf '  cp + sync FILE    best %6s ms  (%s MB/s)   runs: %s\n' "$(ms "$COPY_BEST")" "$(mbps "$SIZE" "$COPY_BEST")" "$(for t in "${COPY[@]}"; do printf '%s ' "$(ms "$t")"; done)"
    if [[ -n $SHA_SPEED ]]; then
        printf '  (sha256 compute alone, openssl speed -evp sha256: %s MB/s, i.e. %s ms for this file)\n' "$SHA_SPEED" "$(awk -v s="$SIZE" -v v="$SHA_SPEED" 'BEGIN { printf "%.0f", s / 1e3 / v }')"
    fi
    printf '  wharf upload steps, median ms: batch %s, PUT %s, verify %s, commit %s\n' "$(ms "$(median_of "${S_BATCH[@]}")")" \
        "$(ms "$(median_of "${S_PUT[@]}")")" "$(ms "$(median_of "${S_VERIFY[@]}")")" "$(ms "$(median_of "${S_COMMIT[@]}")")"
    printf '  per-run ratio wharf / floor: %s\n' "${PAIRED[*]}"
    printf '  wharf upload runs (ms): %s\n' "$(for t in "${UP[@]}"; do printf '%s ' "$(ms "$t")"; done)"
    printf '  server CPU seconds per transfer, median: upload %s; download wharf %s, nginx worker %s\n' \
        "$(median_of "${CPU_UP[@]}")" "$(median_of "${CPU_DW[@]}")" "$(median_of "${CPU_DN[@]}")"
    printf '  download runs (MB/s): wharf %s| nginx %s\n' "$(for t in "${DW[@]}"; do printf '%s ' "$(mbps "$SIZE" "$t")"; done)" "$(for t in "${DN[@]}"; do printf '%s ' "$(mbps "$SIZE" "$t")"; done)"
    echo
    echo "wharf peak RSS (VmHWM; a fresh server per phase), target < 150 MB:"
    printf '  %-28s %8s MiB  %s\n' "upload phase, after start" "$RSS_IDLE_UPLOAD" ""
    printf '  %-28s %8s MiB  %s\n' "upload phase, peak" "$RSS_UPLOAD" "$(pass "$RSS_UPLOAD" '<' 150)"
    printf '  %-28s %8s MiB  %s\n' "download phase, after start" "$RSS_IDLE_DOWNLOAD" ""
    printf '  %-28s %8s MiB  %s\n' "download phase, peak" "$RSS_DOWNLOAD" "$(pass "$RSS_DOWNLOAD" '<' 150)"
    printf '  %-28s %8s MiB\n' "download phase, RSS at end" "$RSS_END"
    echo
    echo "command: ${WHARF_BIN:+WHARF_BIN=$WHARF_BIN }${BENCH_SIZE_MB:+BENCH_SIZE_MB=$BENCH_SIZE_MB }${BENCH_RUNS:+BENCH_RUNS=$BENCH_RUNS }${BENCH_WAIT_IDLE:+BENCH_WAIT_IDLE=$BENCH_WAIT_IDLE }bench/transfer.sh"
} | tee "$OUT"
log "written to $OUT"
