#!/usr/bin/env bash
# Wharf clone benchmark: a 2,000-commit repository with 200 MiB of LFS content, cloned from
# Wharf and from a reference server on the same machine, plus Wharf's peak memory.
#
#   bench/clone.sh                                   # 2,000 commits, 20 x 10 MiB LFS files
#   BENCH_COMMITS=200 BENCH_LFS_FILES=4 bench/clone.sh   # quick smoke run
#
# Two parts, measured separately because git http-backend does not speak LFS:
#   1. git clone with LFS pointers only (GIT_LFS_SKIP_SMUDGE=1): Wharf's smart HTTP vs
#      `git http-backend` behind nginx + fcgiwrap, serving a byte-identical copy of the repo.
#   2. LFS content: `git lfs fetch` and `git lfs pull` from Wharf vs a minimal LFS server made of
#      a CGI batch endpoint (a shell script behind the same nginx + fcgiwrap) whose download
#      hrefs point to the same objects served by nginx as static files (sendfile).
#      `cp -r` of the objects is printed as a floor.
#
# Environment:
#   WHARF_BIN        wharf binary to test (default: target/release/wharf, rebuilt when stale)
#   BENCH_COMMITS    commits in the history (default 2000)
#   BENCH_LFS_FILES  LFS files spread along the history (default 20)
#   BENCH_LFS_MB     size of each LFS file in MiB (default 10)
#   BENCH_RUNS       timed runs per LFS measurement (default 5; a run downloads the LFS content 4 times)
#   BENCH_CLONE_RUNS timed runs per clone measurement (default 10: a clone takes a few tenths
#                    of a second, so three runs are too few to separate 10 % from noise)
#   BENCH_TMP        parent folder for the temporary data (default /tmp)
#   BENCH_KEEP=1     keep the temporary folder (and server logs) after the run
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
COMMITS=${BENCH_COMMITS:-2000}
LFS_FILES=${BENCH_LFS_FILES:-20}
LFS_MB=${BENCH_LFS_MB:-10}
RUNS=${BENCH_RUNS:-5}
CLONE_RUNS=${BENCH_CLONE_RUNS:-10}
LFS_SIZE=$((LFS_MB * 1024 * 1024))
REPO=clone-bench

for v in COMMITS LFS_FILES LFS_MB RUNS CLONE_RUNS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
((LFS_FILES <= COMMITS)) || die "BENCH_LFS_FILES must not exceed BENCH_COMMITS"
export LC_ALL=C

# ---------------------------------------------------------------- tools
missing=()
command -v git >/dev/null || missing+=(git)
command -v git-lfs >/dev/null || missing+=(git-lfs)
command -v curl >/dev/null || missing+=(curl)
command -v sha256sum >/dev/null || missing+=(coreutils)
command -v python3 >/dev/null || missing+=(python3)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx-light)
[[ -x /usr/sbin/fcgiwrap ]] || command -v fcgiwrap >/dev/null || missing+=(fcgiwrap)
if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt-get"
    [[ $(id -u) == 0 ]] || die "need root to install ${missing[*]} (or install them first)"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
FCGIWRAP=$(command -v fcgiwrap || echo /usr/sbin/fcgiwrap)
[[ -x $NGINX && -x $FCGIWRAP ]] || die "nginx or fcgiwrap not found after installation"
HTTP_BACKEND=$(git --exec-path)/git-http-backend
[[ -x $HTTP_BACKEND ]] || die "git-http-backend not found in $(git --exec-path)"

# ---------------------------------------------------------------- wharf binary
bench_binary

# ---------------------------------------------------------------- temp space and cleanup
TMP=$(mktemp -d "${BENCH_TMP:-/tmp}/wharf-clone-bench.XXXXXX")
DATA=$TMP/data
REF=$TMP/ref
WORK=$TMP/work
CLONES=$TMP/clones
WHARF_PID="" NGINX_PID="" FCGI_PID="" SAMPLER_PID=""

cleanup() {
    local rc=$?
    stop_pid "$SAMPLER_PID"
    stop_pid "$WHARF_PID"
    stop_pid "$NGINX_PID"
    stop_pid "$FCGI_PID"
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

secs() { awk -v t="$1" 'BEGIN { printf "%.3f", t }'; }
runs_list() { local t; for t in "$@"; do printf '%s ' "$(secs "$t")"; done; }

# ---------------------------------------------------------------- client environment
# A private HOME: the git-lfs filters live in its .gitconfig, and the user's own git and
# credential settings stay out of the measurement. The servers get empty HOMEs of their own.
mkdir -p "$TMP/home" "$TMP/srv-home" "$CLONES"
export HOME=$TMP/home
export GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 GIT_LFS_SKIP_SMUDGE=1
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
"$WHARF" --data "$DATA" user add bench --email b@x --password pw >/dev/null
TOKEN=$("$WHARF" --data "$DATA" token add bench --role write | tail -n1)
[[ $TOKEN == hf_* ]] || die "unexpected token output: $TOKEN"
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
WHARF_URL=http://bench:$TOKEN@127.0.0.1:$PORT/bench/$REPO

HOME=$TMP/srv-home WHARF_RATE_LIMITS=off WHARF_XET_CONVERT_DELAY=86400 WHARF_LOG=warn "$WHARF" --data "$DATA" serve --listen "127.0.0.1:$PORT" >"$TMP/wharf.log" 2>&1 &
WHARF_PID=$!
for ((i = 0; ; i++)); do
    curl -sf -o /dev/null "$BASE/api/models" && break
    kill -0 "$WHARF_PID" 2>/dev/null || { cat "$TMP/wharf.log" >&2; die "wharf exited during start-up"; }
    ((i < 200)) || die "wharf did not answer GET /api/models within 10 s"
    sleep 0.05
done
curl -sS --fail-with-body -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$REPO\",\"type\":\"model\"}" "$BASE/api/repos/create" || die "cannot create the repo"

# ---------------------------------------------------------------- history
log "generating $LFS_FILES LFS files of $LFS_MB MiB from /dev/urandom"
git clone -q "$WHARF_URL" "$WORK" 2>/dev/null || die "cannot clone the new repo from wharf"
git -C "$WORK" lfs install --local >/dev/null
OIDS=()
for ((f = 1; f <= LFS_FILES; f++)); do
    head -c "$LFS_SIZE" /dev/urandom >"$TMP/obj"
    oid=$(sha256sum "$TMP/obj" | cut -d' ' -f1)
    mkdir -p "$WORK/.git/lfs/objects/${oid:0:2}/${oid:2:2}"
    mv "$TMP/obj" "$WORK/.git/lfs/objects/${oid:0:2}/${oid:2:2}/$oid"
    OIDS+=("$oid")
done

# One fast-import stream: every commit rewrites one of 50 small text files; the LFS pointers
# data/part-NN.bin are added at evenly spaced commits, the last one in the last commit.
log "generating $COMMITS commits with git fast-import"
t0=$(now)
STEP=$((COMMITS / LFS_FILES))
# Wharf may create repositories with an initial commit (like the Hub's .gitattributes one).
BASE_COMMITS=0 PARENT=""
if PARENT=$(git -C "$WORK" rev-parse -q --verify refs/remotes/origin/main^0); then
    BASE_COMMITS=$(git -C "$WORK" rev-list --count "$PARENT")
fi
TOTAL_COMMITS=$((COMMITS + BASE_COMMITS))
emit_file() { # path content: an inline file change; content gets a final newline
    printf 'M 100644 inline %s\ndata %d\n%s\n' "$1" $((${#2} + 1)) "$2"
}
{
    for ((c = 1; c <= COMMITS; c++)); do
        msg="Commit $c of $COMMITS"
        printf 'commit refs/heads/main\ncommitter Bench <b@x> %d +0000\ndata %d\n%s\n' $((1700000000 + c * 60)) "${#msg}" "$msg"
        ((c == 1)) && [[ -n $PARENT ]] && printf 'from %s\n' "$PARENT"
        if ((c == 1)); then
            emit_file .gitattributes '*.bin filter=lfs diff=lfs merge=lfs -text'
            emit_file README.md $'---\nlicense: mit\n---\n# clone-bench\n\nA synthetic history for the Wharf clone benchmark.'
        fi
        k=$((c % 50))
        printf -v body 'note %02d, revision %d (commit %d)\nThe quick brown fox jumps over the lazy dog.\nThis line stays the same in every revision.' "$k" $((c / 50)) "$c"
        printf -v path 'notes/note-%02d.txt' "$k"
        emit_file "$path" "$body"
        if ((c % STEP == 0 && c / STEP <= LFS_FILES)); then
            f=$((c / STEP))
            printf -v body 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d' "${OIDS[f - 1]}" "$LFS_SIZE"
            printf -v path 'data/part-%02d.bin' "$f"
            emit_file "$path" "$body"
        fi
    done
} >"$TMP/history.fi"
git -C "$WORK" fast-import --quiet <"$TMP/history.fi" || die "git fast-import failed"
rm -f "$TMP/history.fi"
GEN_S=$(elapsed "$t0" "$(now)")
[[ $(git -C "$WORK" rev-list --count main) == "$TOTAL_COMMITS" ]] || die "fast-import did not produce $COMMITS commits"
git -C "$WORK" checkout -q -f main
log "history generated in $(secs "$GEN_S") s; pushing (LFS objects first, then git)"

t0=$(now)
git -C "$WORK" lfs push --all origin main >"$TMP/push.log" 2>&1 || { cat "$TMP/push.log" >&2; die "git lfs push failed"; }
git -C "$WORK" push -q origin main >>"$TMP/push.log" 2>&1 || { cat "$TMP/push.log" >&2; die "git push failed"; }
PUSH_S=$(elapsed "$t0" "$(now)")
log "pushed in $(secs "$PUSH_S") s"

# ---------------------------------------------------------------- reference server
# A byte-identical copy of the repository as Wharf stores it (same packs, same config), and
# of the LFS objects.
mapfile -t found < <(find "$DATA/repos" -type d -name '*.git' -prune)
((${#found[@]} == 1)) || die "expected one repository under $DATA/repos, found ${#found[@]}"
WHARF_GITDIR=${found[0]}
mkdir -p "$REF/repos" "$REF/lfs" "$REF/nginx"
cp -a "$WHARF_GITDIR" "$REF/repos/$REPO.git"
cp -a "$DATA/lfs/objects" "$REF/lfs/objects"
[[ $(find "$REF/lfs/objects" -type f | wc -l) == "$LFS_FILES" ]] || die "expected $LFS_FILES LFS objects in $DATA/lfs/objects"
PACK_MB=$(du -sk "$REF/repos/$REPO.git/objects" | awk '{ printf "%.1f", $1 / 1024 }')
PACKS=$(find "$REF/repos/$REPO.git/objects/pack" -name '*.pack' | wc -l)
LOOSE=$(find "$REF/repos/$REPO.git/objects" -path '*/pack' -prune -o -type f -print | grep -c '/[0-9a-f][0-9a-f]/' || true)

# Minimal LFS batch endpoint (download only): every object it has gets an href to nginx.
cat >"$REF/lfs-batch.cgi" <<EOF
#!/bin/bash
body=\$(head -c "\${CONTENT_LENGTH:-0}")
if [[ \$REQUEST_METHOD != POST || \$body != *'"operation":"download"'* ]]; then
    printf 'Status: 501 Not Implemented\r\nContent-Type: application/vnd.git-lfs+json\r\n\r\n{"message":"This server only serves downloads"}\n'
    exit 0
fi
re='"oid":"([0-9a-f]{64})","size":([0-9]+)'
out="" sep=""
while [[ \$body =~ \$re ]]; do
    oid=\${BASH_REMATCH[1]} size=\${BASH_REMATCH[2]}
    body=\${body#*"\${BASH_REMATCH[0]}"}
    rel=\${oid:0:2}/\${oid:2:2}/\$oid
    if [[ -f $REF/lfs/objects/\$rel ]]; then
        out+="\$sep{\"oid\":\"\$oid\",\"size\":\$size,\"authenticated\":true,\"actions\":{\"download\":{\"href\":\"http://\$HTTP_HOST/lfs/objects/\$rel\"}}}"
    else
        out+="\$sep{\"oid\":\"\$oid\",\"size\":\$size,\"error\":{\"code\":404,\"message\":\"Object does not exist\"}}"
    fi
    sep=,
done
printf 'Status: 200 OK\r\nContent-Type: application/vnd.git-lfs+json\r\n\r\n{"transfer":"basic","objects":[%s],"hash_algo":"sha256"}\n' "\$out"
EOF
chmod +x "$REF/lfs-batch.cgi"

RPORT=$(free_port)
while [[ $RPORT == "$PORT" ]]; do RPORT=$(free_port); done
REF_URL=http://127.0.0.1:$RPORT/git/$REPO.git
SOCK=$REF/fcgiwrap.sock
NGINX_USER=""
[[ $(id -u) == 0 ]] && NGINX_USER="user root;"
CGI_PARAMS="
        fastcgi_param REQUEST_METHOD \$request_method;
        fastcgi_param QUERY_STRING \$query_string;
        fastcgi_param CONTENT_TYPE \$content_type;
        fastcgi_param CONTENT_LENGTH \$content_length;
        fastcgi_param REMOTE_ADDR \$remote_addr;
        fastcgi_param SERVER_PROTOCOL \$server_protocol;
        fastcgi_param GATEWAY_INTERFACE CGI/1.1;
        fastcgi_param PATH /usr/local/bin:/usr/bin:/bin;
        fastcgi_param HOME $TMP/srv-home;"
cat >"$REF/nginx/nginx.conf" <<EOF
daemon off;
$NGINX_USER
worker_processes 1;
pid $REF/nginx/nginx.pid;
error_log $REF/nginx/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_max_body_size 0;
    client_body_temp_path $REF/nginx/body;
    proxy_temp_path $REF/nginx/proxy;
    fastcgi_temp_path $REF/nginx/fastcgi;
    uwsgi_temp_path $REF/nginx/uwsgi;
    scgi_temp_path $REF/nginx/scgi;
    server {
        listen 127.0.0.1:$RPORT;
        location /lfs/objects/ {
            root $REF;
        }
        location ~ ^/git/[^/]+\.git/info/lfs/objects/batch\$ {
            fastcgi_pass unix:$SOCK;
            fastcgi_param SCRIPT_FILENAME $REF/lfs-batch.cgi;$CGI_PARAMS
        }
        location ~ ^/git(/.*)\$ {
            fastcgi_pass unix:$SOCK;
            fastcgi_buffering off;
            fastcgi_param SCRIPT_FILENAME $HTTP_BACKEND;
            fastcgi_param PATH_INFO \$1;
            fastcgi_param GIT_PROJECT_ROOT $REF/repos;
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;$CGI_PARAMS
        }
    }
}
EOF
"$FCGIWRAP" -c 1 -s "unix:$SOCK" >"$REF/fcgiwrap.log" 2>&1 &
FCGI_PID=$!
"$NGINX" -p "$REF/nginx" -c "$REF/nginx/nginx.conf" -e "$REF/nginx/error.log" &
NGINX_PID=$!
for ((i = 0; ; i++)); do
    curl -sf -o /dev/null "$REF_URL/info/refs?service=git-upload-pack" && break
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$REF/nginx/error.log" >&2; die "nginx exited during start-up"; }
    kill -0 "$FCGI_PID" 2>/dev/null || { cat "$REF/fcgiwrap.log" >&2; die "fcgiwrap exited during start-up"; }
    ((i < 200)) || { cat "$REF/nginx/error.log" >&2; die "the reference server did not answer within 10 s"; }
    sleep 0.05
done

# ---------------------------------------------------------------- memory sampling
RSS_KB=0 TREE_KB=0
proc_rss() { # pid -> RSS_KB (0 when gone); builtins only, no fork
    local k v u
    RSS_KB=0
    { while read -r k v u; do [[ $k == VmRSS: ]] && { RSS_KB=$v; break; }; done <"/proc/$1/status"; } 2>/dev/null || true
}
tree_rss() { # pid -> adds the RSS of pid and all its descendants to TREE_KB
    local f c
    local -a kids
    proc_rss "$1"
    TREE_KB=$((TREE_KB + RSS_KB))
    for f in /proc/"$1"/task/*/children; do
        kids=()
        { read -r -a kids <"$f"; } 2>/dev/null || true # no final newline: read "fails" but fills kids
        for c in "${kids[@]}"; do tree_rss "$c"; done
    done
}
sampler() { # pid out: every 100 ms, peak VmRSS of pid and of pid + descendants (kB) -> out
    local pid=$1 out=$2 peak=0 peak_tree=0 changed
    while kill -0 "$pid" 2>/dev/null; do
        TREE_KB=0
        tree_rss "$pid"
        proc_rss "$pid"
        changed=0
        ((RSS_KB > peak)) && { peak=$RSS_KB; changed=1; }
        ((TREE_KB > peak_tree)) && { peak_tree=$TREE_KB; changed=1; }
        ((changed)) && echo "$peak $peak_tree" >"$out.tmp" && mv -f "$out.tmp" "$out"
        sleep 0.1
    done
}
start_sampler() { # out
    echo 5 >"/proc/$WHARF_PID/clear_refs" 2>/dev/null || true # resets VmHWM to the current RSS
    sampler "$WHARF_PID" "$1" &
    SAMPLER_PID=$!
}
stop_sampler() { # out -> PEAK_KB PEAK_TREE_KB HWM_KB
    stop_pid "$SAMPLER_PID"
    SAMPLER_PID=""
    read -r PEAK_KB PEAK_TREE_KB <"$1" || die "the memory sampler wrote nothing"
    HWM_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$WHARF_PID/status")
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ---------------------------------------------------------------- part 1: git clone
clone_once() { # url label -> seconds; checks the result (after the clock stops)
    local dest=$CLONES/$2 t0 t1
    rm -rf "$dest"
    sync
    t0=$(now)
    git clone -q "$1" "$dest" 2>>"$TMP/clone-$2.log" || { cat "$TMP/clone-$2.log" >&2; die "git clone from $2 failed"; }
    t1=$(now)
    [[ $(git -C "$dest" rev-list --count HEAD) == "$TOTAL_COMMITS" ]] || die "clone from $2 does not have $TOTAL_COMMITS commits"
    [[ $(stat -c %s "$dest/data/part-01.bin") -lt 200 ]] || die "clone from $2 smudged LFS files despite GIT_LFS_SKIP_SMUDGE"
    elapsed "$t0" "$t1"
}

ls_remote_once() { # url -> seconds: one GET info/refs + one POST (ls-refs), nothing else
    local t0 t1
    t0=$(now)
    git ls-remote "$1" >/dev/null 2>>"$TMP/ls-remote.log" || { cat "$TMP/ls-remote.log" >&2; die "git ls-remote $1 failed"; }
    t1=$(now)
    elapsed "$t0" "$t1"
}

log "part 1: git clone (LFS pointers only), $CLONE_RUNS runs each, after a warm-up"
start_sampler "$TMP/rss-clone"
clone_once "$WHARF_URL" wharf >/dev/null # warm-up: page cache, connection set-up paths
clone_once "$REF_URL" reference >/dev/null
clone_once "file://$REF/repos/$REPO.git" local >/dev/null
CW=() CR=() CL=() LW=() LR=()
for ((r = 1; r <= CLONE_RUNS; r++)); do # interleaved, so drift hits both alike
    CW+=("$(clone_once "$WHARF_URL" wharf)")
    CR+=("$(clone_once "$REF_URL" reference)")
    CL+=("$(clone_once "file://$REF/repos/$REPO.git" local)")
    LW+=("$(ls_remote_once "$WHARF_URL")")
    LR+=("$(ls_remote_once "$REF_URL")")
    log "clone run $r: wharf $(secs "${CW[-1]}") s, http-backend $(secs "${CR[-1]}") s, file:// $(secs "${CL[-1]}") s; ls-remote wharf $(secs "${LW[-1]}") s, http-backend $(secs "${LR[-1]}") s"
done
stop_sampler "$TMP/rss-clone"
RSS_CLONE=$PEAK_KB TREE_CLONE=$PEAK_TREE_KB HWM_CLONE=$HWM_KB
PACK_RECV_MB=$(du -sk "$CLONES/wharf/.git/objects" | awk '{ printf "%.1f", $1 / 1024 }')
rm -rf "$CLONES"/{wharf,reference,local}

# ---------------------------------------------------------------- part 2: LFS content
# Each run starts from a fresh pointer-only clone (not timed); then `git lfs fetch` (download
# into .git/lfs/objects) or `git lfs pull` (download + write the working-tree files) is timed.
lfs_once() { # url label fetch|pull -> seconds; checks the result
    local dest=$CLONES/lfs-$2 t0 t1 n
    rm -rf "$dest"
    git clone -q "$1" "$dest" 2>>"$TMP/lfs-$2.log" || { cat "$TMP/lfs-$2.log" >&2; die "git clone from $2 failed"; }
    sync
    t0=$(now)
    (cd "$dest" && env -u GIT_LFS_SKIP_SMUDGE git lfs "$3" >>"$TMP/lfs-$2.log" 2>&1) || { cat "$TMP/lfs-$2.log" >&2; die "git lfs $3 from $2 failed"; }
    t1=$(now)
    n=$(find "$dest/.git/lfs/objects" -type f -size "${LFS_SIZE}c" | wc -l)
    ((n == LFS_FILES)) || die "git lfs $3 from $2 stored $n of $LFS_FILES objects"
    if [[ $3 == pull ]]; then
        n=$(find "$dest/data" -name '*.bin' -size "${LFS_SIZE}c" | wc -l)
        ((n == LFS_FILES)) || die "git lfs pull from $2 checked out $n of $LFS_FILES files"
    fi
    elapsed "$t0" "$t1"
}
cp_once() {
    local t0 t1
    rm -rf "$CLONES/cp"
    sync
    t0=$(now)
    cp -r "$REF/lfs/objects" "$CLONES/cp"
    t1=$(now)
    elapsed "$t0" "$t1"
}

LFS_TOTAL=$((LFS_FILES * LFS_SIZE))
log "part 2: LFS content ($LFS_FILES x $LFS_MB MiB), $RUNS runs each, after a warm-up"
cat "$DATA"/lfs/objects/*/*/* "$REF"/lfs/objects/*/*/* >/dev/null # page cache
start_sampler "$TMP/rss-lfs"
lfs_once "$WHARF_URL" wharf fetch >/dev/null
lfs_once "$REF_URL" reference fetch >/dev/null
FW=() FR=() PW=() PR=() CP=()
for ((r = 1; r <= RUNS; r++)); do
    FW+=("$(lfs_once "$WHARF_URL" wharf fetch)")
    FR+=("$(lfs_once "$REF_URL" reference fetch)")
    PW+=("$(lfs_once "$WHARF_URL" wharf pull)")
    PR+=("$(lfs_once "$REF_URL" reference pull)")
    CP+=("$(cp_once)")
    log "lfs run $r: fetch wharf $(secs "${FW[-1]}") s / reference $(secs "${FR[-1]}") s; pull wharf $(secs "${PW[-1]}") s / reference $(secs "${PR[-1]}") s; cp -r $(secs "${CP[-1]}") s"
done
stop_sampler "$TMP/rss-lfs"
RSS_LFS=$PEAK_KB TREE_LFS=$PEAK_TREE_KB HWM_LFS=$HWM_KB
RSS_END=$(awk '/^VmRSS:/ { print $2 }' "/proc/$WHARF_PID/status")
rm -rf "$CLONES"/lfs-* "$CLONES/cp"

# ---------------------------------------------------------------- report
pass() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "ok" : "MISSED" }'; }
row() { # metric wharf-list-name reference-list-name stat target
    local -n W=$2 R=$3
    local w r
    if [[ $4 == best ]]; then w=$(best_of "${W[@]}") r=$(best_of "${R[@]}"); else w=$(median_of "${W[@]}") r=$(median_of "${R[@]}"); fi
    printf '%-40s %9s %11s %6s %7s %s\n' "$1" "$(secs "$w")" "$(secs "$r")" "$(ratio "$w" "$r")" "${5:+<= $5}" "${5:+$(pass "$(ratio "$w" "$r")" "$5")}"
}
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$ROOT/bench/out"
OUT=$ROOT/bench/out/clone-$STAMP.txt
{
    echo "Wharf clone benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "binary:    $WHARF ($WHARF_VERSION, rev $GIT_REV)"
    echo "machine:   $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
    echo "tools:     $(git --version), $(git lfs version | cut -d' ' -f1), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') + fcgiwrap"
    echo "repo:      $TOTAL_COMMITS commits ($COMMITS generated), $LFS_FILES LFS files x $LFS_MB MiB; git objects ${PACK_MB} MiB on disk ($PACKS pack(s), $LOOSE loose)"
    echo "set-up:    fast-import $(secs "$GEN_S") s, push to wharf (LFS + git) $(secs "$PUSH_S") s"
    echo "reference: git http-backend behind nginx + fcgiwrap (git); CGI batch endpoint + nginx static files, sendfile (LFS)"
    echo "load avg:  $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (other work on the machine adds noise)"
    echo "timing:    wall clock; $CLONE_RUNS (clone) / $RUNS (LFS) interleaved runs after one warm-up; page cache warm, sync before each run"
    echo
    printf '%-40s %9s %11s %6s %7s %s\n' metric "wharf s" "reference s" ratio target ""
    row "git clone, pointers only (best)" CW CR best 1.1
    row "git clone, pointers only (median)" CW CR median 1.1
    row "git ls-remote: 2 requests (best)" LW LR best
    row "git ls-remote: 2 requests (median)" LW LR median
    row "git lfs fetch, $((LFS_TOTAL >> 20)) MiB (best)" FW FR best 1.1
    row "git lfs fetch, $((LFS_TOTAL >> 20)) MiB (median)" FW FR median 1.1
    row "git lfs pull, $((LFS_TOTAL >> 20)) MiB (best)" PW PR best 1.1
    row "git lfs pull, $((LFS_TOTAL >> 20)) MiB (median)" PW PR median 1.1
    echo
    echo "floors and details:"
    printf '  git clone file:// (upload-pack over a pipe, no HTTP)   best %s s   runs: %s\n' "$(secs "$(best_of "${CL[@]}")")" "$(runs_list "${CL[@]}")"
    printf '  cp -r of the LFS objects (page cache to page cache)     best %s s   runs: %s\n' "$(secs "$(best_of "${CP[@]}")")" "$(runs_list "${CP[@]}")"
    printf '  git clone runs (s):      wharf %s| reference %s\n' "$(runs_list "${CW[@]}")" "$(runs_list "${CR[@]}")"
    printf '  git lfs fetch runs (s):  wharf %s| reference %s\n' "$(runs_list "${FW[@]}")" "$(runs_list "${FR[@]}")"
    printf '  git lfs pull runs (s):   wharf %s| reference %s\n' "$(runs_list "${PW[@]}")" "$(runs_list "${PR[@]}")"
    printf '  git lfs fetch throughput (best, MB/s): wharf %s, reference %s\n' \
        "$(mbps "$LFS_TOTAL" "$(best_of "${FW[@]}")")" "$(mbps "$LFS_TOTAL" "$(best_of "${FR[@]}")")"
    printf '  cloned .git/objects: %s MiB\n' "$PACK_RECV_MB"
    echo
    echo "wharf memory (VmRSS sampled every 100 ms; VmHWM reset at the start of each part):"
    printf '  %-44s %7s MiB   (wharf + git children: %s MiB; VmHWM %s MiB)\n' "peak during the clones" "$(mib "$RSS_CLONE")" "$(mib "$TREE_CLONE")" "$(mib "$HWM_CLONE")"
    printf '  %-44s %7s MiB   (wharf + git children: %s MiB; VmHWM %s MiB)\n' "peak during the LFS fetches and pulls" "$(mib "$RSS_LFS")" "$(mib "$TREE_LFS")" "$(mib "$HWM_LFS")"
    printf '  %-44s %7s MiB\n' "RSS at the end" "$(mib "$RSS_END")"
    echo
    echo "command: ${BENCH_COMMITS:+BENCH_COMMITS=$BENCH_COMMITS }${BENCH_CLONE_RUNS:+BENCH_CLONE_RUNS=$BENCH_CLONE_RUNS }${BENCH_LFS_FILES:+BENCH_LFS_FILES=$BENCH_LFS_FILES }${BENCH_LFS_MB:+BENCH_LFS_MB=$BENCH_LFS_MB }${BENCH_RUNS:+BENCH_RUNS=$BENCH_RUNS }bench/clone.sh"
} | tee "$OUT"
log "written to $OUT"
