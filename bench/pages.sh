#!/usr/bin/env bash
# Wharf page benchmark: server time of the web pages (and the expanded tree API) for
# repositories with 1,000 files and 1,000 commits. Target (issue): every page < 50 ms.
#
#   bench/pages.sh                                        # 1,000 files, 1,000 commits, 20 runs
#   BENCH_FILES=200 BENCH_COMMITS=200 BENCH_RUNS=5 bench/pages.sh   # quick run
#
# Two repositories are built with git fast-import and pushed with git + git-lfs:
#   bench/pages-nested  BENCH_FILES files: README.md, .gitattributes and model.safetensors at
#                       the root, the others spread over BENCH_FOLDERS folders
#   bench/pages-flat    the same number of files, all in the root folder
# Both: BENCH_COMMITS commits on main (the first adds half of the files; each later one edits
# one to three files, about every other one adds a file, every 100th edits README.md), a
# model card with metadata (pipeline_tag, license, library, language, datasets, tags) and one
# small LFS-tracked safetensors file with a valid header, so the card shows the tensor info.
#
# Server time is approximated with curl as time_starttransfer - time_pretransfer (time from
# the request being sent to the first response byte, on loopback; Wharf renders a page fully
# before sending it). Every page gets BENCH_WARMUP untimed requests, then BENCH_RUNS timed
# ones on one keep-alive connection; median and p95 (nearest rank) are reported.
#
# Tree pages also get a "cold" figure: the first tree request after a restart computes the
# last commit of every entry by walking history (afterwards it is cached per commit and
# derived incrementally on writes). For each cold sample the server is restarted, warmed with
# GET /models and the card page (so the figure is the tree's own cost, not process start-up),
# then the tree page is requested once. BENCH_COLD_RUNS restarts per page; median and max.
#
# Environment:
#   WHARF_BIN        wharf binary to test (default: target/release/wharf, rebuilt when stale)
#   BENCH_FILES      files per repository, all included (default 1000)
#   BENCH_COMMITS    commits per repository (default 1000; plus Wharf's initial commit)
#   BENCH_FOLDERS    folders of the nested repository (default 20)
#   BENCH_RUNS       timed requests per page (default 20)
#   BENCH_WARMUP     untimed requests per page before those (default 2)
#   BENCH_COLD_RUNS  server restarts per tree page for the cold figure (default 3)
#   BENCH_TARGET_MS  the target (default 50)
#   BENCH_TMP        parent folder for the temporary data (default /tmp)
#   BENCH_KEEP=1     keep the temporary folder (data folder, clones, server log) after the run
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
FILES=${BENCH_FILES:-1000}
COMMITS=${BENCH_COMMITS:-1000}
FOLDERS=${BENCH_FOLDERS:-20}
RUNS=${BENCH_RUNS:-20}
WARMUP=${BENCH_WARMUP:-2}
COLD_RUNS=${BENCH_COLD_RUNS:-3}
TARGET_MS=${BENCH_TARGET_MS:-50}
NS=bench
NESTED=pages-nested
FLAT=pages-flat
TASK=text-classification

for v in FILES COMMITS FOLDERS RUNS COLD_RUNS TARGET_MS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer"
((FILES >= 10)) || die "BENCH_FILES must be at least 10"
((COMMITS >= 2)) || die "BENCH_COMMITS must be at least 2"
((FOLDERS <= FILES - 3)) || die "BENCH_FOLDERS must not exceed BENCH_FILES - 3"
export LC_ALL=C

# ---------------------------------------------------------------- tools
missing=()
command -v git >/dev/null || missing+=(git)
command -v git-lfs >/dev/null || missing+=(git-lfs)
command -v curl >/dev/null || missing+=(curl)
command -v sha256sum >/dev/null || missing+=(coreutils)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    [[ $(id -u) == 0 ]] || die "need root to install ${missing[*]} (or install them first)"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# ---------------------------------------------------------------- wharf binary
bench_binary

# ---------------------------------------------------------------- temp space and cleanup
TMP=$(mktemp -d "${BENCH_TMP:-/tmp}/wharf-pages-bench.XXXXXX")
DATA=$TMP/data
WHARF_PID=""

cleanup() {
    local rc=$?
    stop_pid "$WHARF_PID"
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

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- client environment
mkdir -p "$TMP/home" "$TMP/srv-home"
export HOME=$TMP/home
export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
unset GIT_DIR GIT_WORK_TREE GIT_PROTOCOL
git config --global user.name Bench
git config --global user.email b@x
git config --global init.defaultBranch main
git config --global advice.detachedHead false
git lfs install --skip-repo >/dev/null

# ---------------------------------------------------------------- wharf
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "binary: $WHARF ($WHARF_VERSION, rev $GIT_REV)"
log "temp folder: $TMP"
"$WHARF" --data "$DATA" user add "$NS" --email b@x --password pw >/dev/null
TOKEN=$("$WHARF" --data "$DATA" token add "$NS" --role write | tail -n1)
[[ $TOKEN == hf_* ]] || die "unexpected token output: $TOKEN"
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT

start_server() {
    HOME=$TMP/srv-home WHARF_RATE_LIMITS=off WHARF_LOG=warn "$WHARF" --data "$DATA" serve --listen "127.0.0.1:$PORT" >>"$TMP/wharf.log" 2>&1 &
    WHARF_PID=$!
    local i
    for ((i = 0; ; i++)); do
        curl -sf -o /dev/null "$BASE/api/models" && break
        kill -0 "$WHARF_PID" 2>/dev/null || { cat "$TMP/wharf.log" >&2; die "wharf exited during start-up"; }
        ((i < 200)) || die "wharf did not answer GET /api/models within 10 s"
        sleep 0.05
    done
}
restart_server() {
    stop_pid "$WHARF_PID"
    WHARF_PID=""
    start_server
}
start_server

# ---------------------------------------------------------------- content
# README.md: a model card with metadata and a body with the usual parts (headings, a table,
# code, a list, links). Revision $1 changes one line.
readme() {
    cat <<EOF
---
license: apache-2.0
language:
- en
- fr
library_name: transformers
pipeline_tag: $TASK
tags:
- text-classification
- bert
- benchmark
datasets:
- glue
- imdb
base_model: google-bert/bert-base-uncased
metrics:
- accuracy
model-index:
- name: pages-bench
  results:
  - task:
      type: text-classification
    dataset:
      name: IMDB
      type: imdb
    metrics:
    - type: accuracy
      value: 0.93
---

# Pages benchmark model

A synthetic repository for the Wharf page benchmark (revision $1). It looks like a typical
fine-tuned classifier: a card with metadata, weights in safetensors, and many small files.

## Model description

This model is a fine-tuned version of [bert-base-uncased](https://huggingface.co/google-bert/bert-base-uncased)
on the IMDB dataset. It achieves the following results on the evaluation set:

| Metric   | Value |
|----------|------:|
| Loss     | 0.21  |
| Accuracy | 0.93  |
| F1       | 0.93  |

## How to use

\`\`\`python
from transformers import pipeline

classifier = pipeline("text-classification", model="$NS/pages-bench")
print(classifier("This movie was great!"))
\`\`\`

## Training procedure

- learning_rate: 2e-05
- train_batch_size: 16
- eval_batch_size: 16
- seed: 42
- optimizer: Adam with betas=(0.9,0.999) and epsilon=1e-08
- num_epochs: 3

### Framework versions

- Transformers 4.40.0
- PyTorch 2.3.0
- Datasets 2.19.0
- Tokenizers 0.19.1

> **Note**: the weights in this repository are zeros; only the header matters here.
EOF
}

# model.safetensors: 8-byte little-endian header length, JSON header (padded with spaces to a
# multiple of 8), then the tensor data (zeros). 2 + 128 + 16,384 parameters.
make_safetensors() { # out
    local header len i lenbytes=""
    header='{"__metadata__":{"format":"pt"},"classifier.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"classifier.weight":{"dtype":"F32","shape":[2,64],"data_offsets":[8,520]},"embeddings.weight":{"dtype":"BF16","shape":[256,64],"data_offsets":[520,33288]}}'
    while ((${#header} % 8)); do header+=' '; done
    len=${#header}
    for ((i = 0; i < 8; i++)); do lenbytes+=$(printf '\\x%02x' $(((len >> (8 * i)) & 255))); done
    {
        printf "$lenbytes"
        printf '%s' "$header"
        head -c 33288 /dev/zero
    } >"$1"
    [[ $(stat -c %s "$1") == $((8 + len + 33288)) ]] || die "bad safetensors size"
}
make_safetensors "$TMP/model.safetensors"
ST_OID=$(sha256sum "$TMP/model.safetensors" | cut -d' ' -f1)
ST_SIZE=$(stat -c %s "$TMP/model.safetensors")

# ---------------------------------------------------------------- repositories
DATA_FILES=$((FILES - 3)) # plus README.md, .gitattributes, model.safetensors
FIRST=$((DATA_FILES / 2)) # data files added by the first commit; the rest along the history

path_of() { # layout index -> path of data file index
    if [[ $1 == nested ]]; then
        printf 'folder-%02d/file-%04d.txt' $(($2 % FOLDERS)) "$2"
    else
        printf 'file-%04d.txt' "$2"
    fi
}

emit_file() { # path content: an inline file change; content gets a final newline
    printf 'M 100644 inline %s\ndata %d\n%s\n' "$1" $((${#2} + 1)) "$2"
}

file_body() { # index revision commit
    printf 'file %04d, revision %d (commit %d)\nalpha: %d\nbeta: %d\nThe quick brown fox jumps over the lazy dog.\nThis line stays the same in every revision.' \
        "$1" "$2" "$3" $(($1 * 7 + $2)) $(($1 * 13 + $3))
}

# Writes the fast-import stream for layout $1 (nested|flat) after parent $2 (may be empty).
# Sets nothing; deterministic (a fixed LCG picks the files each commit edits).
history_stream() {
    local layout=$1 parent=$2 c k m j n added rev_readme=0 msg path body seed=12345
    local -a rev=()
    for ((c = 1; c <= COMMITS; c++)); do
        local changes="" title=""
        if ((c == 1)); then
            changes+=$(emit_file .gitattributes '*.safetensors filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text')$'\n'
            changes+=$(emit_file README.md "$(readme 0)")$'\n'
            printf -v body 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d' "$ST_OID" "$ST_SIZE"
            changes+=$(emit_file model.safetensors "$body")$'\n'
            for ((k = 0; k < FIRST; k++)); do
                rev[k]=0
                changes+=$(emit_file "$(path_of "$layout" "$k")" "$(file_body "$k" 0 1)")$'\n'
            done
            added=$FIRST
            title="Initial upload: model card, weights and $FIRST files"
        else
            # Add the next file when the history has got this far (evenly spread).
            if ((added < DATA_FILES && (added - FIRST) * (COMMITS - 1) < (c - 1) * (DATA_FILES - FIRST))); then
                rev[added]=0
                path=$(path_of "$layout" "$added")
                changes+=$(emit_file "$path" "$(file_body "$added" 0 "$c")")$'\n'
                title="Add $path"
                added=$((added + 1))
            fi
            # Edit one to three existing files.
            m=$((1 + (c % 3 == 0) + (c % 7 == 0)))
            for ((j = 0; j < m; j++)); do
                seed=$(((seed * 1103515245 + 12345) % 2147483648))
                n=$(((seed >> 8) % added))
                rev[n]=$((rev[n] + 1))
                path=$(path_of "$layout" "$n")
                changes+=$(emit_file "$path" "$(file_body "$n" "${rev[n]}" "$c")")$'\n'
                [[ -z $title ]] && title="Update $path"
            done
            if ((c % 100 == 0)); then
                rev_readme=$((rev_readme + 1))
                changes+=$(emit_file README.md "$(readme "$rev_readme")")$'\n'
                title="Update model card and $path"
            fi
        fi
        msg="$title"$'\n\n'"Commit $c of $COMMITS in the page benchmark."
        printf 'commit refs/heads/main\ncommitter Bench <b@x> %d +0000\ndata %d\n%s\n' $((1700000000 + c * 3600)) "${#msg}" "$msg"
        ((c == 1)) && [[ -n $parent ]] && printf 'from %s\n' "$parent"
        printf '%s' "$changes"
    done
}

build_repo() { # name layout
    local name=$1 layout=$2 work=$TMP/work-$1 parent="" base=0 t0 count
    curl -sS --fail-with-body -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"name\":\"$name\",\"type\":\"model\"}" "$BASE/api/repos/create" || die "cannot create $NS/$name"
    git clone -q "http://$NS:$TOKEN@127.0.0.1:$PORT/$NS/$name" "$work" 2>/dev/null || die "cannot clone $NS/$name"
    git -C "$work" lfs install --local >/dev/null
    mkdir -p "$work/.git/lfs/objects/${ST_OID:0:2}/${ST_OID:2:2}"
    cp "$TMP/model.safetensors" "$work/.git/lfs/objects/${ST_OID:0:2}/${ST_OID:2:2}/$ST_OID"
    if parent=$(git -C "$work" rev-parse -q --verify refs/remotes/origin/main^0); then
        base=$(git -C "$work" rev-list --count "$parent")
    fi
    t0=$(now)
    history_stream "$layout" "$parent" >"$TMP/history-$name.fi"
    git -C "$work" fast-import --quiet <"$TMP/history-$name.fi" || die "git fast-import failed for $name"
    rm -f "$TMP/history-$name.fi"
    count=$(git -C "$work" rev-list --count main)
    [[ $count == $((COMMITS + base)) ]] || die "$name: expected $((COMMITS + base)) commits, got $count"
    count=$(git -C "$work" ls-tree -r main | wc -l)
    [[ $count == "$FILES" ]] || die "$name: expected $FILES files, got $count"
    log "$NS/$name: $COMMITS commits ($base before them), $FILES files, generated in $(secs "$t0" "$(now)") s"
    git -C "$work" checkout -q -f main
    t0=$(now)
    git -C "$work" lfs push --all origin main >"$TMP/push-$name.log" 2>&1 || { cat "$TMP/push-$name.log" >&2; die "git lfs push failed"; }
    git -C "$work" push -q origin main >>"$TMP/push-$name.log" 2>&1 || { cat "$TMP/push-$name.log" >&2; die "git push failed"; }
    log "$NS/$name: pushed in $(secs "$t0" "$(now)") s"
}

build_repo "$NESTED" nested
build_repo "$FLAT" flat
TOTAL_COMMITS=$(git -C "$TMP/work-$NESTED" rev-list --count main)

# Pages that need a commit or a file: the head commit, and a file that exists since the first
# commit (its history spans the whole of main).
HEAD_NESTED=$(git -C "$TMP/work-$NESTED" rev-parse main)
HEAD_FLAT=$(git -C "$TMP/work-$FLAT" rev-parse main)
FOLDER=$(printf 'folder-%02d' $((7 % FOLDERS)))
FILE_NESTED=$(path_of nested 7)
FILE_FLAT=$(path_of flat 7)
EDITS_NESTED=$(git -C "$TMP/work-$NESTED" rev-list --count main -- "$FILE_NESTED")
EDITS_FLAT=$(git -C "$TMP/work-$FLAT" rev-list --count main -- "$FILE_FLAT")

# ---------------------------------------------------------------- sanity checks
curl -sf "$BASE/api/models?pipeline_tag=$TASK" | grep -q "\"$NS/$NESTED\"" ||
    die "GET /api/models?pipeline_tag=$TASK does not list $NS/$NESTED (card metadata not derived?)"
CARD=$(curl -sf "$BASE/$NS/$NESTED") || die "GET /$NS/$NESTED failed"
grep -q 'data-testid="params"' <<<"$CARD" || die "the card page shows no parameter count (safetensors header not read?)"
PARAMS=$(grep -o 'data-testid="params"><strong>[^<]*' <<<"$CARD" | sed 's/.*<strong>//')
TENSOR_TYPES=$(grep -o 'data-testid="tensor-types">.*</p>' <<<"$CARD" | sed 's/^[^>]*>//; s/<[^>]*>//g; s/Tensor types: //; s/  */ /g; s/ *$//') || true
log "card page shows $PARAMS ($TENSOR_TYPES)"

# ---------------------------------------------------------------- measurement
# One keep-alive curl: WARMUP + RUNS requests of one URL; prints the timed ones as
# "server_ms bytes" and fails unless every answer is 200.
measure() { # url count -> lines "ms bytes"
    local url=$1 n=$2 i
    local -a args=()
    for ((i = 0; i < n; i++)); do args+=(-o /dev/null "$url"); done
    curl -s -w '%{http_code} %{time_pretransfer} %{time_starttransfer} %{size_download}\n' "${args[@]}" |
        awk -v url="$url" '$1 != 200 { print "HTTP " $1 " for " url > "/dev/stderr"; bad = 1 }
            { printf "%.3f %d\n", ($3 - $2) * 1000, $4 } END { exit bad }'
}
percentiles() { # values on stdin -> "median p95" (p95: nearest rank)
    sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        r = int(0.95 * NR); if (r < 0.95 * NR) r++
        printf "%.1f %.1f\n", m, v[r] }'
}
med_max() { # values on stdin -> "median max"
    sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f %.1f\n", m, v[NR] }'
}

# Page list: key|label|path. Keys starting with "tree" also get a cold figure.
PAGES=()
PAGES+=("static|baseline: GET /-/static/wharf.css (HTTP floor)|/-/static/wharf.css")
PAGES+=("list|/models|/models")
PAGES+=("list|/models?pipeline_tag=$TASK|/models?pipeline_tag=$TASK")
for repo in "$NESTED" "$FLAT"; do
    if [[ $repo == "$NESTED" ]]; then head=$HEAD_NESTED file=$FILE_NESTED; else head=$HEAD_FLAT file=$FILE_FLAT; fi
    r="/$NS/$repo"
    PAGES+=("page|$r (card)|$r")
    PAGES+=("tree|$r/tree/main|$r/tree/main")
    [[ $repo == "$NESTED" ]] && PAGES+=("tree|$r/tree/main/$FOLDER|$r/tree/main/$FOLDER")
    PAGES+=("page|$r/blob/main/README.md|$r/blob/main/README.md")
    PAGES+=("page|$r/commits/main|$r/commits/main")
    PAGES+=("page|$r/commits/main?path=$file|$r/commits/main?path=$file")
    PAGES+=("page|$r/commit/<head>|$r/commit/$head")
    PAGES+=("tree|/api/models$r/tree/main?expand=true|/api/models$r/tree/main?expand=true")
done

declare -A COLD=()
log "cold tree requests: $COLD_RUNS server restarts per tree page"
for entry in "${PAGES[@]}"; do
    IFS='|' read -r key label path <<<"$entry"
    [[ $key == tree ]] || continue
    repo_path=$(sed -E 's#^(/api/models)?(/[^/]+/[^/]+).*#\2#' <<<"$path")
    samples=()
    for ((i = 0; i < COLD_RUNS; i++)); do
        restart_server
        measure "$BASE/models" 1 >/dev/null
        measure "$BASE$repo_path" 1 >/dev/null # card page: opens the repo, reads the head
        samples+=("$(measure "$BASE$path" 1 | cut -d' ' -f1)")
    done
    COLD[$path]=$(printf '%s\n' "${samples[@]}" | med_max)
    log "  $label: cold ${samples[*]} ms"
done

restart_server
log "warm requests: $WARMUP untimed + $RUNS timed per page"
ROWS=()
MISSED=0
for entry in "${PAGES[@]}"; do
    IFS='|' read -r key label path <<<"$entry"
    out=$(measure "$BASE$path" $((WARMUP + RUNS)) | tail -n "$RUNS")
    read -r med p95 < <(cut -d' ' -f1 <<<"$out" | percentiles)
    bytes=$(tail -n1 <<<"$out" | cut -d' ' -f2)
    kb=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1024 }')
    if [[ $key == static ]]; then
        verdict="(info)" target="-"
    else
        target="< $TARGET_MS"
        verdict=$(awk -v a="$med" -v b="$p95" -v t="$TARGET_MS" 'BEGIN { print (a < t && b < t) ? "ok" : "MISSED" }')
        [[ $verdict == ok ]] || MISSED=$((MISSED + 1))
    fi
    cold="-" cverdict=""
    if [[ -n ${COLD[$path]:-} ]]; then
        read -r cmed cmax <<<"${COLD[$path]}"
        cold="$cmed (max $cmax)"
        cverdict=$(awk -v a="$cmax" -v t="$TARGET_MS" 'BEGIN { print (a < t) ? "ok" : "MISSED" }')
        [[ $cverdict == ok ]] || MISSED=$((MISSED + 1))
    fi
    ROWS+=("$label|$kb|$med|$p95|$target|$verdict|$cold|$cverdict")
    log "  $label: median $med ms, p95 $p95 ms${cold:+, cold $cold}"
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/pages-$(date -u +%Y%m%d-%H%M%S).txt
{
    echo "Wharf page benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "binary: $WHARF ($WHARF_VERSION, rev $GIT_REV)"
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load average before: $LOAD_START, after: $LOAD_END"
    echo "repos: $NS/$NESTED ($FILES files: 3 at the root, $DATA_FILES in $FOLDERS folders) and $NS/$FLAT ($FILES files in the root);"
    echo "       $TOTAL_COMMITS commits each on main; card shows $PARAMS ($TENSOR_TYPES)"
    echo "       commits?path=: $FILE_NESTED ($EDITS_NESTED commits) and $FILE_FLAT ($EDITS_FLAT commits)"
    echo "server time = curl time_starttransfer - time_pretransfer, loopback, keep-alive;"
    echo "$WARMUP warm-up + $RUNS timed requests per page; cold = first tree request after a restart"
    echo "(server warmed with /models and the card page first), median and max of $COLD_RUNS restarts"
    echo
    printf '%-62s %6s %8s %8s %7s %-7s %-17s %s\n' "page" "KiB" "median" "p95" "target" "warm" "cold first (ms)" "cold"
    printf '%-62s %6s %8s %8s %7s %-7s %-17s %s\n' "" "" "ms" "ms" "ms" "" "" ""
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label kb med p95 target verdict cold cverdict <<<"$row"
        printf '%-62s %6s %8s %8s %7s %-7s %-17s %s\n' "$label" "$kb" "$med" "$p95" "$target" "$verdict" "$cold" "$cverdict"
    done
    echo
    if ((MISSED)); then echo "$MISSED figure(s) missed the < $TARGET_MS ms target"; else echo "every page met the < $TARGET_MS ms target"; fi
    echo
    echo "command: ${BENCH_FILES:+BENCH_FILES=$BENCH_FILES }${BENCH_COMMITS:+BENCH_COMMITS=$BENCH_COMMITS }${BENCH_FOLDERS:+BENCH_FOLDERS=$BENCH_FOLDERS }${BENCH_RUNS:+BENCH_RUNS=$BENCH_RUNS }${BENCH_COLD_RUNS:+BENCH_COLD_RUNS=$BENCH_COLD_RUNS }${WHARF_BIN:+WHARF_BIN=$WHARF_BIN }bench/pages.sh"
} | tee "$OUT"
log "written to $OUT"
