#!/usr/bin/env bash
# The project's test command: sets up what is missing, builds, and runs every test stage.
#   scripts/test.sh
# Stages: system packages, Python venv, cargo build, cargo test, pytest integration suite,
# and the shared acceptance checks (when ../shared/conformance/run.sh exists).
# Every stage runs even when an earlier one failed; the last line is "N passed, M failed" and
# the exit status is non-zero when any stage failed.
#
# Environment:
#   WHARF_TEST_VENV   where the Python venv for tests/ lives (default ~/.cache/wharf-test-venv)
set -uo pipefail
exec </dev/null
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# rustup's default location, for shells that did not source its profile.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

PASSED=0
FAILED=0
FAILED_NAMES=()

# stage NAME COMMAND...: runs a stage, records and prints its result.
stage() {
  local name=$1
  shift
  echo "=== stage: $name"
  local t0=$SECONDS
  if "$@"; then
    PASSED=$((PASSED + 1))
    echo "=== stage: $name: PASS ($((SECONDS - t0))s)"
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    echo "=== stage: $name: FAIL ($((SECONDS - t0))s)"
  fi
}

# System packages: only installed when missing (apt-get update only in that case).
system_packages() {
  local missing=()
  command -v git >/dev/null 2>&1 || missing+=(git)
  command -v git-lfs >/dev/null 2>&1 || missing+=(git-lfs)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing ${missing[*]} and no apt-get to install them" >&2
    return 1
  fi
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null
}

VENV=${WHARF_TEST_VENV:-$HOME/.cache/wharf-test-venv}
REQ="$ROOT/tests/requirements.txt"

# The venv is (re)built only when it is missing or tests/requirements.txt changed.
python_venv() {
  local want have=""
  want=$(sha256sum "$REQ" | cut -d' ' -f1) || return 1
  [ -f "$VENV/.requirements.sha256" ] && have=$(cat "$VENV/.requirements.sha256")
  if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ] && "$VENV/bin/python" -c 'import huggingface_hub, pytest, requests' 2>/dev/null; then
    return 0
  fi
  echo "creating the test venv at $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" &&
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" &&
    echo "$want" >"$VENV/.requirements.sha256"
}

export WHARF_BIN=target/debug/wharf

stage "system packages" system_packages
stage "python venv" python_venv
stage "cargo build" cargo build --workspace --bins
stage "cargo test" cargo test --workspace
stage "pytest tests/" env PYTHONDONTWRITEBYTECODE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/

CONFORMANCE=../shared/conformance/run.sh
if [ -f "$CONFORMANCE" ]; then
  stage "conformance client (newest huggingface_hub)" env CONFORMANCE_ONLY=client bash "$CONFORMANCE"
  stage "conformance client (huggingface_hub 0.36.2)" env CONFORMANCE_ONLY=client CONFORMANCE_HF_VERSION=0.36.2 bash "$CONFORMANCE"
  stage "conformance git + git-lfs" env CONFORMANCE_ONLY=git bash "$CONFORMANCE"
else
  echo "=== (no $CONFORMANCE: acceptance checks skipped)"
fi

if [ $FAILED -ne 0 ]; then
  echo "failed stages: ${FAILED_NAMES[*]}"
fi
echo "$PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
