# Shared set-up of the benchmarks (sourced, not run): logging, the release binary, a temporary
# folder cleaned up on exit, and one Wharf server on a fresh data folder with a user and a
# write token. Every benchmark sources it; transfer.sh, clone.sh and pages.sh use the helpers and
# the binary step but set up their own servers (nginx, fcgiwrap, restarts).
#
# After `bench_setup` and `bench_start_server`: ROOT, WHARF, TMP, DATA, PORT, BASE, TOKEN,
# WHARF_PID. Environment: WHARF_BIN (binary to test), BENCH_TMP (parent of the temporary
# folder), BENCH_KEEP=1 (keep it).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
# Statistics over a list of seconds.
best_of() { printf '%s\n' "$@" | sort -g | head -n1; }
median_of() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", 100 * a / b }'; }
mbps() { awk -v s="$1" -v t="$2" 'BEGIN { printf "%.0f", s / 1e6 / t }'; } # decimal MB/s
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# The wharf binary: WHARF_BIN, else target/release/wharf, rebuilt when older than the sources.
# Sets WHARF, WHARF_VERSION and GIT_REV (with "+dirty" when crates/ has uncommitted changes).
bench_binary() {
    if [[ -n ${WHARF_BIN:-} ]]; then
        [[ -x $WHARF_BIN ]] || die "WHARF_BIN=$WHARF_BIN is not executable"
        WHARF=$WHARF_BIN
    else
        WHARF=$ROOT/target/release/wharf
        if [[ ! -x $WHARF || -n $(find "$ROOT/crates" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$WHARF" -type f -print -quit) ]]; then
            log "building the release binary (cargo build --release -p wharf)"
            (cd "$ROOT" && cargo build --release -p wharf >&2) ||
                die "the release build failed; to benchmark an existing binary: WHARF_BIN=... $0"
        fi
    fi
    WHARF_VERSION=$("$WHARF" --version 2>/dev/null || echo unknown)
    GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$ROOT" status --porcelain -- crates 2>/dev/null) ]]; then GIT_REV="$GIT_REV+dirty"; fi
}

stop_pid() { # pid: SIGTERM, wait up to 10 s, then SIGKILL
    local pid=$1 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# PIDs to stop on exit besides the server.
BENCH_PIDS=()
WHARF_PID=""

bench_cleanup() {
    local rc=$? pid
    for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
    stop_pid "$WHARF_PID"
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}

# Binary, temporary folder (removed on exit), data folder, user `bench` and its write token.
bench_setup() {
    bench_binary
    TMP=$(mktemp -d "${BENCH_TMP:-/tmp}/wharf-bench.XXXXXX")
    DATA=$TMP/data
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    "$WHARF" --data "$DATA" user add bench --email b@x --password pw >/dev/null
    TOKEN=$("$WHARF" --data "$DATA" token add bench --role write | tail -n1)
}

# Starts `wharf serve` on a free loopback port (log appended to $TMP/wharf.log) and waits until it
# answers. Background LFS-to-Xet conversion is pushed out of the run, and request rate limits
# are off: a benchmark is one client hammering the server, which the limits exist to stop.
bench_start_server() {
    PORT=$(free_port)
    BASE=http://127.0.0.1:$PORT
    WHARF_RATE_LIMITS=off WHARF_XET_CONVERT_DELAY=86400 WHARF_LOG=${WHARF_LOG:-warn} \
        "$WHARF" --data "$DATA" serve --listen "127.0.0.1:$PORT" >>"$TMP/wharf.log" 2>&1 &
    WHARF_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        curl -fsS -o /dev/null "$BASE/api/whoami-v2" -H "Authorization: Bearer $TOKEN" 2>/dev/null && return 0
        kill -0 "$WHARF_PID" 2>/dev/null || die "the server exited: $(tail -n 20 "$TMP/wharf.log")"
        sleep 0.1
    done
    die "the server did not answer within 30 s"
}

# Creates a model repository `bench/$1` (or in the namespace of the token $2, when given).
bench_create_repo() {
    curl -fsS -o /dev/null -H "Authorization: Bearer ${2:-$TOKEN}" -H 'Content-Type: application/json' \
        -d "{\"name\":\"$1\",\"type\":\"model\"}" "$BASE/api/repos/create" ||
        die "cannot create the repository $1"
}

# The Python of the test venv (huggingface_hub + hf_xet), created like scripts/test.sh does.
bench_venv() {
    VENV=${WHARF_TEST_VENV:-$HOME/.cache/wharf-test-venv}
    if ! "$VENV/bin/python" -c 'import huggingface_hub, hf_xet, numpy' 2>/dev/null; then
        log "preparing the Python environment in $VENV"
        python3 -m venv "$VENV" >&2
        "$VENV/bin/pip" install -q -r "$ROOT/tests/requirements.txt" >&2
        "$VENV/bin/python" -c 'import numpy' 2>/dev/null || "$VENV/bin/pip" install -q numpy >&2
    fi
    PY=$VENV/bin/python
}
