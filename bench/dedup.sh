#!/usr/bin/env bash
# Wharf Xet dedup benchmark: a ~512 MiB safetensors model, then a "fine-tuned" copy where ~5 % of
# the tensors changed, both uploaded with the official client through Xet. Reports, for the
# second upload, the bytes sent over the wire and the bytes newly stored, as % of the file size
# (target: both ≤ 10 %); then Xet download throughput against plain resolve, and the server's
# peak memory. See bench/README.md.
#
#   bench/dedup.sh                        # 512 MiB model
#   BENCH_SIZE_MB=64 bench/dedup.sh       # quick smoke run
#
# Environment: BENCH_SIZE_MB (default 512), BENCH_CHANGED (fraction of tensor bytes changed,
# default 0.05), WHARF_BIN, BENCH_TMP, BENCH_KEEP=1 (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SIZE_MB=${BENCH_SIZE_MB:-512}
CHANGED=${BENCH_CHANGED:-0.05}
[[ $SIZE_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_SIZE_MB must be a positive integer"
command -v curl >/dev/null || die "curl is needed"

bench_venv
bench_setup
HELPER=$ROOT/bench/dedup_bench.py
run_py() { # env... -- args: runs the helper with HF_* set for the server behind $1
    local endpoint=$1
    shift
    env -u HF_TOKEN HF_ENDPOINT="$endpoint" HF_TOKEN="$TOKEN" HF_HUB_DISABLE_TELEMETRY=1 \
        HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HOME="$(mktemp -d "$TMP/hfhome.XXXX")" \
        "$PY" "$HELPER" "$@" | tail -n1
}
json() { "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {}, d))' "$1"; }

# ---------------------------------------------------------------- the model and its fine-tune
log "writing a ${SIZE_MB} MiB safetensors model and a copy with ${CHANGED} of its tensor bytes changed"
MADE=$("$PY" "$HELPER" make "$TMP/base.safetensors" "$TMP/tuned.safetensors" --size-mib "$SIZE_MB" --changed "$CHANGED" | tail -n1)
SIZE=$(json size <<<"$MADE")
log "model: $(json tensors <<<"$MADE") tensors, $SIZE bytes; fine-tune changed $(json changed_tensors <<<"$MADE") tensors, $(json changed_bytes <<<"$MADE") bytes"

# ---------------------------------------------------------------- server and counting proxy
bench_start_server
PROXY_PORT=$(free_port)
COUNTS=$TMP/proxy-counts.json
"$PY" "$HELPER" proxy "$PROXY_PORT" "$PORT" "$COUNTS" >"$TMP/proxy.log" 2>&1 &
BENCH_PIDS+=($!)
for ((i = 0; i < 100; i++)); do [[ -s $COUNTS ]] && break; sleep 0.1; done
VIA_PROXY=http://127.0.0.1:$PROXY_PORT
bench_create_repo model

physical() { "$WHARF" --data "$DATA" storage stats --json | json total_physical_bytes; }
sent() { sleep 0.5; json up <"$COUNTS"; }

# ---------------------------------------------------------------- uploads (through the proxy)
log "upload 1: the base model"
UP1=$(run_py "$VIA_PROXY" upload bench/model "$TMP/base.safetensors" model.safetensors)
SENT1=$(sent)
PHYS1=$(physical)
log "upload 1: $(json 'round(seconds, 2)' <<<"$UP1") s, $SENT1 bytes sent, physical storage $PHYS1 bytes"
log "upload 2: the fine-tuned model, as a second commit of the same file"
UP2=$(run_py "$VIA_PROXY" upload bench/model "$TMP/tuned.safetensors" model.safetensors)
SENT2=$(sent)
PHYS2=$(physical)
WIRE=$((SENT2 - SENT1))
STORED=$((PHYS2 - PHYS1))
log "upload 2: $(json 'round(seconds, 2)' <<<"$UP2") s, $WIRE bytes sent, $STORED bytes newly stored"
STATS=$("$WHARF" --data "$DATA" storage stats --json)

# ---------------------------------------------------------------- downloads (direct)
WANT=$(sha256sum "$TMP/tuned.safetensors" | cut -d' ' -f1)
log "downloads of the fine-tuned file: Xet, plain resolve with curl, client without Xet"
XET=$(run_py "$BASE" download bench/model model.safetensors "$(mktemp -d "$TMP/cache.XXXX")")
[[ $(json sha256 <<<"$XET") == "$WANT" ]] || die "the Xet download differs from the upload"
CURL_S=$(curl -sS -L -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE/bench/model/resolve/main/model.safetensors")
NOXET=$(HF_HUB_DISABLE_XET=1 run_py "$BASE" download bench/model model.safetensors "$(mktemp -d "$TMP/cache.XXXX")")
[[ $(json sha256 <<<"$NOXET") == "$WANT" ]] || die "the plain download differs from the upload"
XET_S=$(json seconds <<<"$XET")
NOXET_S=$(json seconds <<<"$NOXET")
HWM=$(hwm_mb "$WHARF_PID")

# ---------------------------------------------------------------- report
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/dedup-$STAMP.txt
{
    echo "Wharf Xet dedup benchmark, $STAMP, $("$WHARF" --version), $(nproc) cores"
    echo "model: $(json tensors <<<"$MADE") F32 tensors, $SIZE bytes; fine-tune: $(json changed_tensors <<<"$MADE") tensors re-drawn, $(json changed_bytes <<<"$MADE") bytes ($(pct "$(json changed_bytes <<<"$MADE")" "$SIZE") %)"
    echo "upload 1 (base):      $(json 'round(seconds, 2)' <<<"$UP1") s, sent $SENT1 bytes ($(pct "$SENT1" "$SIZE") %), stored $PHYS1 bytes"
    echo "upload 2 (fine-tune): $(json 'round(seconds, 2)' <<<"$UP2") s"
    echo "  bytes sent over the wire: $WIRE ($(pct "$WIRE" "$SIZE") % of the file; target <= 10 %)"
    echo "  bytes newly stored:       $STORED ($(pct "$STORED" "$SIZE") % of the file; target <= 10 %)"
    echo "storage: logical $(json total_logical_bytes <<<"$STATS"), physical $(json total_physical_bytes <<<"$STATS"), dedup ratio $(json 'round(dedup_ratio, 2)' <<<"$STATS")"
    echo "download of the fine-tuned file (fresh cache each):"
    echo "  Xet (hf_hub_download + hf_xet): $(json 'round(seconds, 2)' <<<"$XET") s, $(mbps "$SIZE" "$XET_S") MB/s"
    echo "  plain resolve (curl):           $(awk -v t="$CURL_S" 'BEGIN { printf "%.2f", t }') s, $(mbps "$SIZE" "$CURL_S") MB/s"
    echo "  client, HF_HUB_DISABLE_XET=1:   $(json 'round(seconds, 2)' <<<"$NOXET") s, $(mbps "$SIZE" "$NOXET_S") MB/s"
    echo "  throughput ratio Xet / curl resolve: $(ratio "$CURL_S" "$XET_S"); Xet / client without Xet: $(ratio "$NOXET_S" "$XET_S")"
    echo "server peak RSS (VmHWM): $HWM MiB"
} | tee "$OUT"
log "report written to $OUT"
