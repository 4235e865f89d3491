#!/usr/bin/env bash
# Runs Wharf's libFuzzer targets (fuzz/, cargo-fuzz) and reports what each run did.
#
#   scripts/fuzz.sh [target ...]            fuzz the named targets (default: all), one after another
#   scripts/fuzz.sh --minimize [target ...] merge each target's work corpus into fuzz/corpus/<target>
#   scripts/fuzz.sh --report               refresh the corpus sizes in the report and print it
#   scripts/fuzz.sh --list                  print the targets
#
# Each run starts from the committed corpus fuzz/corpus/<target>/ and the fixed crash inputs in
# fuzz/regressions/<target>/ (read only) and writes what it discovers to fuzz/work/<target>/
# (not committed). It stops after FUZZ_RUNS executions (default 10,000,000) or at the first
# crash, timeout or out-of-memory, whose input lands in fuzz/artifacts/<target>/. It runs in
# segments of FUZZ_SEGMENT executions (1,000,000) and records the totals after each, so a
# campaign cut short (the machine is shared; 10M runs can take hours) is resumed by running the
# script again: it continues a campaign of the same build (the last commit that changed the
# fuzzed sources) and sanitizer that found nothing (FUZZ_RESUME=0 starts over). --minimize
# keeps the inputs that add coverage (libFuzzer -merge), at most FUZZ_CORPUS_CAP files (200;
# seed-* files first, then the smallest), so the corpus `cargo test` replays stays small.
#
# Environment: FUZZ_RUNS (executions per target), FUZZ_SANITIZER (address | none; default
# address: none is 2-3x faster and still catches panics, timeouts and RSS growth, not memory
# errors in dependencies' unsafe code), FUZZ_TIMEOUT (seconds per input, 10), FUZZ_RSS_MB
# (2048), FUZZ_NICE (19), FUZZ_REPORT (bench/fuzz-report.md), FUZZ_CORPUS_CAP (200),
# FUZZ_TARGET_DIR (fuzz/target, fuzz/target-<sanitizer> for other sanitizers).
#
# The fuzzers need nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them. cargo-fuzz is installed from crates.io when missing.
#
# Results accumulate in bench/fuzz-results.tsv (one row per target: its latest campaign) and
# the table is written to $FUZZ_REPORT after every target and printed at the end, so targets
# fuzzed in separate invocations end up in one report. Exit status: 1 when a run found a crash.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ="$ROOT/fuzz"
RUNS=${FUZZ_RUNS:-10000000}
SANITIZER=${FUZZ_SANITIZER:-address}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_MB=${FUZZ_RSS_MB:-2048}
NICE=${FUZZ_NICE:-19}
REPORT=${FUZZ_REPORT:-$ROOT/bench/fuzz-report.md}
RESULTS="$ROOT/bench/fuzz-results.tsv"
CAP=${FUZZ_CORPUS_CAP:-200}
SEGMENT=${FUZZ_SEGMENT:-1000000}
# One build directory per sanitizer, so switching does not rebuild everything.
TARGET_DIR=${FUZZ_TARGET_DIR:-$FUZZ/target}
[ "$SANITIZER" = address ] || TARGET_DIR=${FUZZ_TARGET_DIR:-$FUZZ/target-$SANITIZER}
export RUSTC_BOOTSTRAP=1

log() { printf '[fuzz] %s\n' "$*" >&2; }
die() { printf '[fuzz] ERROR: %s\n' "$*" >&2; exit 2; }

# Largest input per target: enough for the structures each parser reads (a multi-chunk xorb,
# a shard with several files, a model card with a model-index) without slowing every run.
max_len() {
    case "$1" in
        xorb) echo 16384 ;;
        front_matter | markdown | shard) echo 8192 ;;
        path_normalize) echo 4200 ;; # past the 4096-byte path limit
        lfs_pointer) echo 1100 ;;    # past the 1024-byte pointer limit
        commit_ndjson) echo 8192 ;;  # a header and a few dozen operations
        gitattributes) echo 1024 ;;  # every line is a glob to compile: keep inputs short
        *) echo 4096 ;;
    esac
}

# libFuzzer options shared by fuzzing and merging.
common_flags() {
    local target=$1
    local flags=(-rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" -timeout="$TIMEOUT"
        -max_len="$(max_len "$target")")
    [ -f "$FUZZ/dict/$target.dict" ] && flags+=(-dict="$FUZZ/dict/$target.dict")
    printf '%s\n' "${flags[@]}"
}

ensure_cargo_fuzz() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz"
        nice -n 10 cargo install cargo-fuzz --locked
    fi
}

all_targets() { (cd "$FUZZ" && cargo fuzz list); }

# The built fuzzer. Runs start it directly, not through `cargo fuzz run`, so that a run queued
# behind others never rebuilds (from sources someone may be editing) before it starts.
binary() {
    local host
    host=$(rustc -vV | sed -n 's/^host: //p')
    echo "$TARGET_DIR/$host/release/$1"
}

# The id of what target $1's binary is built from (see build).
build_id() {
    local file="fuzz/fuzz_targets/$1.rs" sources crate id
    sources=(Cargo.toml fuzz/Cargo.toml fuzz/Cargo.lock "$file" crates/wharf-core)
    for crate in $(grep -o 'wharf_[a-z]*::' "$ROOT/$file" | sort -u | tr _ - | tr -d :); do
        sources+=("crates/$crate")
    done
    id=$(git -C "$ROOT" log -1 --format=%H -- "${sources[@]}" | cut -c1-10)
    [ -z "$(git -C "$ROOT" status --porcelain -- "${sources[@]}")" ] || id="$id+dirty"
    echo "$id"
}

build() {
    log "building targets (sanitizer: $SANITIZER)"
    (cd "$FUZZ" && nice -n 10 cargo fuzz build --debug-assertions --sanitizer "$SANITIZER" \
        --target-dir "$TARGET_DIR")
    # What was built, per target: the last commit that changed what its binary is made of
    # (the target's file, the crate it fuzzes, wharf-core, the fuzz package's manifest and
    # lockfile, the workspace manifest), "+dirty" when those have local changes. Commits
    # elsewhere (other crates, scripts, corpora, reports) do not start a new campaign.
    local target
    for target in $(all_targets); do
        build_id "$target" >"$TARGET_DIR/build-id.$target"
    done
}

# Runs one target in segments of $SEGMENT executions until it has $RUNS (counting what an
# earlier, interrupted campaign of the same build and sanitizer already did, unless
# FUZZ_RESUME=0), recording the running totals after every segment so that an interrupted
# campaign keeps its figures. Stops at the first crash.
run_target() {
    local target=$1
    local work="$FUZZ/work/$target" artifacts="$FUZZ/artifacts/$target"
    local log_file="$FUZZ/work/$target.log"
    mkdir -p "$work" "$artifacts" "$FUZZ/corpus/$target" "$FUZZ/regressions/$target"
    local build execs=0 seconds=0 crashes=0 status=0
    build=$(cat "$TARGET_DIR/build-id.$target")
    if [ "${FUZZ_RESUME:-1}" = 1 ]; then
        read -r execs seconds < <(previous "$target" "$build")
    fi
    [ "$execs" -gt 0 ] && log "$target: resuming after $execs executions of build $build"
    mapfile -t flags < <(common_flags "$target")
    while [ "$execs" -lt "$RUNS" ] && [ "$status" -eq 0 ]; do
        local runs=$((RUNS - execs)) before start end done_now
        [ "$runs" -gt "$SEGMENT" ] && runs=$SEGMENT
        log "$target: $runs runs (done: $execs of $RUNS)"
        before=$(find "$artifacts" -type f | wc -l)
        start=$EPOCHREALTIME
        nice -n "$NICE" "$(binary "$target")" "$work" "$FUZZ/corpus/$target" \
            "$FUZZ/regressions/$target" -runs="$runs" -print_final_stats=1 \
            -artifact_prefix="$artifacts/" "${flags[@]}" >"$log_file" 2>&1 || status=$?
        end=$EPOCHREALTIME
        done_now=$(awk '/stat::number_of_executed_units:/ { n = $2 } END { print n + 0 }' "$log_file")
        execs=$((execs + done_now))
        seconds=$(awk -v s="$seconds" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", s + b - a }')
        crashes=$(($(find "$artifacts" -type f | wc -l) - before))
        [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
        record_run "$target" "$execs" "$seconds" "$crashes" "$build"
    done
    if [ "$status" -ne 0 ]; then
        log "$target: FAILED (exit $status), see $log_file and $artifacts"
        grep -E '^(==|SUMMARY|thread .* panicked|.*deadly signal|.*Timeout|.*out-of-memory)' \
            "$log_file" | head -n 20 >&2 || true
    fi
    return "$status"
}

# "executions seconds" of an earlier campaign of this build and sanitizer that found nothing,
# else "0 0".
previous() {
    awk -F'\t' -v t="$1" -v b="$2" -v s="$SANITIZER" \
        '$1 == t && $5 == 0 && $8 == s && $9 == b { print $2, $3; found = 1 }
         END { if (!found) print 0, 0 }' "$RESULTS" 2>/dev/null || echo 0 0
}

record_run() {
    local target=$1 execs=$2 seconds=$3 crashes=$4 build=$5 rate corpus_files corpus_kb
    rate=$(awk -v n="$execs" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')
    corpus_files=$(find "$FUZZ/corpus/$target" -type f | wc -l)
    corpus_kb=$(du -s --apparent-size --block-size=1K "$FUZZ/corpus/$target" | cut -f1)
    record "$target" "$execs" "$seconds" "$rate" "$crashes" "$corpus_files" "$corpus_kb" \
        "$SANITIZER" "$build" "$(date -u +%Y-%m-%d)"
}

# Replaces the target's row in the results file.
record() {
    mkdir -p "$(dirname "$RESULTS")"
    touch "$RESULTS"
    local row
    row=$(printf '%s\t' "$@")
    { grep -v -P "^$1\t" "$RESULTS" || true; printf '%s\n' "${row%$'\t'}"; } | sort >"$RESULTS.new"
    mv "$RESULTS.new" "$RESULTS"
}

report() {
    {
        echo "# Fuzzing report"
        echo
        echo "Written by \`scripts/fuzz.sh\`: the latest run of each target (libFuzzer via cargo-fuzz,"
        echo "debug assertions and overflow checks on, \`-rss_limit_mb=$RSS_MB -malloc_limit_mb=$RSS_MB"
        echo "-timeout=$TIMEOUT\`, at \`nice $NICE\` on a 2-core machine shared with other builds, so"
        echo "seconds and exec/s depend on their load). Crashes: inputs the run saved as crashing,"
        echo "timing out or running out of memory (a run stops at the first). Corpus: the committed"
        echo "files in \`fuzz/corpus/<target>/\` that \`cargo test\` replays."
        echo
        echo "| target | executions | seconds | exec/s | crashes | corpus files | corpus KiB | sanitizer | build | date |"
        echo "|---|---:|---:|---:|---:|---:|---:|---|---|---|"
        awk -F'\t' '{ printf "| %s | %\047d | %d | %\047d | %d | %d | %d | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' "$RESULTS"
    } >"$REPORT"
    cat "$REPORT"
}

# Updates the corpus columns of every result row to the committed corpora as they are now
# (after --minimize).
refresh_corpus_sizes() {
    [ -f "$RESULTS" ] || return 0
    local target rest files kb
    while IFS=$'\t' read -r target rest; do
        files=$(find "$FUZZ/corpus/$target" -type f | wc -l)
        kb=$(du -s --apparent-size --block-size=1K "$FUZZ/corpus/$target" | cut -f1)
        awk -F'\t' -v OFS='\t' -v t="$target" -v f="$files" -v k="$kb" \
            '$1 == t { $6 = f; $7 = k } { print }' "$RESULTS" >"$RESULTS.new"
        mv "$RESULTS.new" "$RESULTS"
    done <"$RESULTS"
}

# Merges the committed corpus, the regressions and the work corpus into the smallest set with
# the same coverage, capped at $CAP files, and makes it the committed corpus.
minimize() {
    local target=$1 merged
    merged=$(mktemp -d)
    mapfile -t flags < <(common_flags "$target")
    mkdir -p "$FUZZ/work/$target"
    log "$target: merging $(find "$FUZZ/corpus/$target" "$FUZZ/work/$target" -type f | wc -l) inputs"
    nice -n "$NICE" "$(binary "$target")" "$merged" "$FUZZ/corpus/$target" "$FUZZ/work/$target" \
        -merge=1 "${flags[@]}" >"$FUZZ/work/$target.merge.log" 2>&1
    # Seeds (hand-made valid inputs) stay, under their names, even when the merge finds their
    # coverage elsewhere; other inputs are named by content hash, as libFuzzer names them.
    for seed in "$FUZZ/corpus/$target"/seed-*; do
        [ -f "$seed" ] || continue
        rm -f "$merged/$(sha1sum "$seed" | cut -d' ' -f1)"
        cp "$seed" "$merged/"
    done
    local keep
    keep=$( { ls "$merged" | grep '^seed-' || true
              find "$merged" -type f ! -name 'seed-*' -printf '%s %f\n' | sort -n | cut -d' ' -f2; } |
            head -n "$CAP")
    rm -rf "$FUZZ/corpus/$target"
    mkdir -p "$FUZZ/corpus/$target"
    while read -r name; do
        [ -n "$name" ] && cp "$merged/$name" "$FUZZ/corpus/$target/"
    done <<<"$keep"
    rm -rf "$merged"
    log "$target: $(find "$FUZZ/corpus/$target" -type f | wc -l) files kept"
}

main() {
    local mode=fuzz
    case "${1:-}" in
        --list) mode=list; shift ;;
        --report) refresh_corpus_sizes; report; return ;;
        --minimize) mode=minimize; shift ;;
        -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    esac
    ensure_cargo_fuzz
    if [ "$mode" = list ]; then all_targets; return; fi
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(all_targets)
    local known
    known=$(all_targets)
    for t in "${targets[@]}"; do
        grep -qx "$t" <<<"$known" || die "unknown target '$t' (see --list)"
    done
    build
    local failed=0
    for t in "${targets[@]}"; do
        if [ "$mode" = minimize ]; then
            minimize "$t"
        else
            run_target "$t" || failed=1
            report >/dev/null
        fi
    done
    [ "$mode" = fuzz ] && report
    return "$failed"
}

main "$@"
