#!/usr/bin/env bash
# ostree-gateway push benchmark (issue 7). One run, several repetitions, medians.
#
#   bench/run.sh [--preset small|default] [--reps N] [--seed N] [--pushers N]
#                [--work DIR] [--no-build] [--keep] [--debug-log]
#   make bench                       (= bench/run.sh, preset default, 3 reps)
#
# What it does:
#   1. builds release binaries into target-bench/ (its own target dir: no fight over the
#      workspace's build lock);
#   2. generates the data with bench/gen_tree.py (seeded; cached in the work dir) and commits
#      it into a local archive repo: an initial commit C1 and an incremental one C2 (5 changed,
#      2 added, 1 deleted files) on ref bench/app; and one small commit per concurrent pusher;
#   3. starts a release gateway on a fresh temp state dir (loopback, ephemeral port);
#   4. per repetition: our ostree-push initial (fresh gateway repo), incremental, no-op;
#      the initial again into a repo already holding other content (the load commits);
#      `ostree pull-local --untrusted` of the same commits into a fresh archive repo (initial,
#      incremental, no-op; it hardlinks verified objects, writing no object data) and, as a
#      second baseline, from a copy of the source repo on /dev/shm (it must copy every object,
#      as a receive does); the Python ostree-push 1.2.0 (when installed: `make
#      python-ostree-push`) initial, incremental, no-op into another fresh gateway repo;
#      N (32) concurrent pushers, one user and one ref each, into one fresh shared gateway
#      repo: all must succeed; wall time; the gateway's peak RSS (VmHWM, reset before the
#      load through /proc/PID/clear_refs);
#   5. prints a markdown table (medians, ratios, targets, CPU times) and writes it with the
#      raw samples (samples.tsv), the logs and meta.json to the run dir under the work dir.
#
# The caches are warm (the source repo is read once before timing); the machine may be shared,
# so the load average is recorded with every sample, and CPU times (client, gateway) too.
# Environment: BENCH_WORK (default target-bench/work), BENCH_TARGET_DIR (default target-bench),
# BENCH_SOURCE (what the binaries were built from, for the report; default `git describe`),
# OSTREE_PUSH_VENV (default target/ostree-push-venv). Needs ostree, ssh-keygen, python3,
# /usr/bin/time for the client CPU times (package `time`; without it they are n/a); the Python
# client is optional.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRESET=default
REPS=3
SEED=1
PUSHERS=32
WORK=${BENCH_WORK:-$ROOT/target-bench/work}
BUILD=1
KEEP=0
DEBUG_LOG=0

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
        --preset) PRESET=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --pushers) PUSHERS=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep) KEEP=1; shift ;;
        --debug-log) DEBUG_LOG=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "bench: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case $PRESET in small | default) ;; *) echo "bench: --preset small|default" >&2; exit 2 ;; esac
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "bench: --reps N (N >= 1)" >&2; exit 2; }

export PATH=$PATH:$HOME/.cargo/bin
TARGET_DIR=${BENCH_TARGET_DIR:-$ROOT/target-bench}
GW=$TARGET_DIR/release/ostree-gateway
PUSH=$TARGET_DIR/release/ostree-push
PY_PUSH=${OSTREE_PUSH_VENV:-$ROOT/target/ostree-push-venv}/bin/ostree-push
GEN=$ROOT/bench/gen_tree.py

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in ostree ssh-keygen python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (make deps)"
done

# ---------------------------------------------------------------------------------------------
# 1. Release binaries
if ((BUILD)); then
    log "building release binaries in $TARGET_DIR"
    CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet -p ostree-gateway -p ostree-push
fi
[[ -x $GW && -x $PUSH ]] || die "release binaries missing in $TARGET_DIR (drop --no-build)"

# ---------------------------------------------------------------------------------------------
# 2. Data: cached per (preset, seed, generator version)
mkdir -p "$WORK"
GEN_HASH=$(sha256sum "$GEN" | cut -c1-12)
DATA=$WORK/data-$PRESET-s$SEED-$GEN_HASH
SRC=$DATA/repo
REF=bench/app
if [[ ! -f $DATA/commits ]]; then
    log "generating $PRESET data (seed $SEED) in $DATA"
    rm -rf "$DATA"
    mkdir -p "$DATA"
    ostree init --repo="$SRC" --mode=archive
    tree=$DATA/tree
    python3 "$GEN" --seed "$SEED" --preset "$PRESET" --out "$tree" 2>"$DATA/tree.json"
    c1=$(ostree commit --repo="$SRC" --branch="$REF" --tree=dir="$tree" --owner-uid=0 --owner-gid=0 \
        --timestamp=2026-01-01T00:00:00Z --subject="bench initial ($PRESET, seed $SEED)")
    python3 "$GEN" --seed "$SEED" --mutate "$tree" 2>"$DATA/increment.json"
    c2=$(ostree commit --repo="$SRC" --branch="$REF" --tree=dir="$tree" --owner-uid=0 --owner-gid=0 \
        --timestamp=2026-01-02T00:00:00Z --subject="bench incremental ($PRESET, seed $SEED)")
    rm -rf "$tree"
    # One small, distinct commit per concurrent pusher, on ref load/<its user>.
    python3 "$GEN" --seed $((SEED * 1000)) --preset load --count "$PUSHERS" --out "$DATA/load" 2>/dev/null
    for ((i = 0; i < PUSHERS; i++)); do
        ostree commit --repo="$SRC" --branch="load/load$i" --tree=dir="$DATA/load/$i" --owner-uid=0 \
            --owner-gid=0 --timestamp=2026-01-01T00:00:00Z --subject="load $i" >/dev/null
    done
    rm -rf "$DATA/load"
    echo "$c1 $c2 $PUSHERS" >"$DATA/commits"
fi
read -r C1 C2 LOAD_COMMITS <"$DATA/commits"
((LOAD_COMMITS >= PUSHERS)) || die "$DATA has $LOAD_COMMITS load commits; remove it to regenerate"
# Moves bench/app; drops the summary, which is stale then (pull-local would resolve the ref
# from it; the Python ostree-push regenerates it, as after any fresh commit).
set_ref() {
    local repo
    for repo in "$SRC" ${SHM_SRC:+"$SHM_SRC"}; do
        ostree --repo="$repo" refs --create="$REF" --force "$1"
        rm -f "$repo/summary" "$repo/summary.sig"
    done
}

# ---------------------------------------------------------------------------------------------
# 3. Gateway on a fresh state dir
RUN=$(mktemp -d "$WORK/run-$PRESET-XXXXXX")
STATE=$RUN/state
CONFIG=$RUN/gateway.toml
LOGS=$RUN/logs
HOME_DIR=$RUN/home
mkdir -p "$STATE" "$LOGS" "$HOME_DIR"
GW_PID=""
SHM_SRC=""
cleanup() {
    local status=$?
    [[ -n $SHM_SRC ]] && rm -rf "$(dirname "$SHM_SRC")"
    if [[ -n $GW_PID ]] && kill -0 "$GW_PID" 2>/dev/null; then
        kill "$GW_PID" 2>/dev/null || true
        wait "$GW_PID" 2>/dev/null || true
    fi
    if ((status != 0)); then
        log "FAILED (exit $status); logs and state kept in $RUN"
    elif ((!KEEP)); then
        rm -rf "$STATE/repos" "$RUN/pull"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

LEVEL=info
((DEBUG_LOG)) && LEVEL="ostree_gateway=debug,info"
cat >"$CONFIG" <<EOF
state_dir = "$STATE"
[server]
listen = "127.0.0.1:0"
[log]
level = "$LEVEL"
EOF
gw() { "$GW" --config "$CONFIG" --state-dir "$STATE" "$@" >>"$LOGS/admin.log"; }

log "setting up the gateway in $STATE"
mkdir -p "$RUN/keys"
gw user add bench
ssh-keygen -q -t ed25519 -N '' -C bench -f "$RUN/keys/bench"
gw key add bench "$RUN/keys/bench.pub"
gw rule add --repo '**' --ref '**' --user bench --allow create,update
for ((i = 0; i < PUSHERS; i++)); do
    gw user add "load$i"
    ssh-keygen -q -t ed25519 -N '' -C "load$i" -f "$RUN/keys/load$i"
    gw key add "load$i" "$RUN/keys/load$i.pub"
done
gw rule add --repo 'load-*' --ref 'load/{user}' --everyone --allow create,update
for ((r = 1; r <= REPS; r++)); do
    gw repo add "ours-$r" --init
    gw repo add "py-$r" --init
    gw repo add "load-$r" --init
    gw repo add "used-$r" --init
done
LOAD_REFS=()
for ((i = 0; i < PUSHERS; i++)); do LOAD_REFS+=("load/load$i"); done

"$GW" --config "$CONFIG" --state-dir "$STATE" serve --listen 127.0.0.1:0 \
    >"$LOGS/serve.out" 2>"$LOGS/serve.log" &
GW_PID=$!
PORT=""
for ((i = 0; i < 200; i++)); do
    PORT=$(sed -n 's/^ostree-gateway listening on .*:\([0-9]*\)$/\1/p' "$LOGS/serve.out")
    [[ -n $PORT ]] && break
    kill -0 "$GW_PID" 2>/dev/null || die "the gateway exited: $(cat "$LOGS/serve.log")"
    sleep 0.05
done
[[ -n $PORT ]] || die "the gateway did not start listening"
KNOWN_HOSTS=$RUN/known_hosts
echo "[127.0.0.1]:$PORT $(cat "$STATE/host_keys/ssh_host_ed25519_key.pub")" >"$KNOWN_HOSTS"
log "gateway pid $GW_PID on 127.0.0.1:$PORT"

# ---------------------------------------------------------------------------------------------
# Helpers
TSV=$RUN/samples.tsv
: >"$TSV"
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
record() { # metric rep seconds
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(cut -d' ' -f1 /proc/loadavg)" >>"$TSV"
    log "$(printf '%-18s rep %s: %8.3f s  (load %s)' "$1" "$2" "$3" "$(cut -d' ' -f1-3 /proc/loadavg)")"
}
gw_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$GW_PID/stat"; }
timed() { # metric rep command...: runs it, output to a log, records its wall time and the CPU
    # time (user + system) of the client (with its children) and of the gateway meanwhile
    local metric=$1 rep=$2 t0 t1 g0 g1
    shift 2
    # Every sample starts once the gateway has removed the staging repos of earlier pushes
    # (it does so in the background after answering) and with no dirty data of earlier
    # samples waiting for writeback: a receive syncs before its ref move and would otherwise
    # pay for the previous writer.
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -z $(ls -A "$STATE/repos/.staging" 2>/dev/null) ]] && break
        sleep 0.1
    done
    sync
    g0=$(gw_cpu)
    t0=$(now)
    local timer=()
    [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f '%U %S' -o "$LOGS/$metric-$rep.time")
    if ! "${timer[@]}" "$@" >"$LOGS/$metric-$rep.log" 2>&1 </dev/null; then
        cat "$LOGS/$metric-$rep.log" >&2
        tail -n 30 "$LOGS/serve.log" >&2
        die "$metric (rep $rep) failed: $*"
    fi
    t1=$(now)
    g1=$(gw_cpu)
    record "$metric" "$rep" "$(elapsed "$t0" "$t1")"
    if [[ -f $LOGS/$metric-$rep.time ]]; then
        printf '%s_cpu_client\t%s\t%s\t-\n' "$metric" "$rep" \
            "$(awk '{ printf "%.2f", $1 + $2 }' "$LOGS/$metric-$rep.time")" >>"$TSV"
    fi
    printf '%s_cpu_gateway\t%s\t%s\t-\n' "$metric" "$rep" "$(elapsed "$g0" "$g1")" >>"$TSV"
}
expect_ref() { # repo-path ref commit
    local got
    got=$(ostree --repo="$1" rev-parse "$2" 2>/dev/null || true)
    [[ $got == "$3" ]] || die "$1: $2 is '${got}', expected $3"
}
ours() { # user key repo ref...: our ostree-push (the command, as an array, in CMD)
    local user=$1 key=$2 repo=$3
    shift 3
    CMD=(env -u SSH_AUTH_SOCK HOME="$HOME_DIR" "$PUSH" --repo "$SRC" -i "$key"
        -o UserKnownHostsFile="$KNOWN_HOSTS" -o IdentitiesOnly=yes
        "ssh://$user@127.0.0.1:$PORT/$repo" "$@")
}
python_push() { # repo ref...: the Python ostree-push 1.2.0 as tests/src/python.rs runs it
    local repo=$1
    shift
    CMD=(env -u SSH_AUTH_SOCK -u OSTREE_REPO HOME="$HOME_DIR" "$PY_PUSH" --repo "$SRC" -i "$RUN/keys/bench"
        -o UserKnownHostsFile="$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null
        -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=10
        -p "$PORT" "ssh://bench@127.0.0.1/$repo" "$@")
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
HAVE_PY=0
if [[ -x $PY_PUSH ]]; then
    HAVE_PY=1
else
    log "Python ostree-push not installed at $PY_PUSH (make python-ostree-push): skipping it"
fi

# A second baseline: pull-local from a copy of the source repo on tmpfs. From the same
# filesystem pull-local --untrusted verifies each object and then hardlinks it (it writes no
# object data); across filesystems it must write every object, as a receive does.
if [[ -d /dev/shm && -w /dev/shm ]] &&
    (($(df -k --output=avail /dev/shm | tail -n1) > 3 * $(du -sk "$SRC" | cut -f1))); then
    SHM_SRC=$(mktemp -d /dev/shm/ostree-bench-XXXXXX)/repo
    cp -a "$SRC" "$SHM_SRC"
else
    log "no room on /dev/shm: skipping the pull-local-from-tmpfs baseline"
fi

# Warm the page cache with the source repo, as a pusher that just committed would have it.
find "$SRC/objects" -type f -exec cat {} + >/dev/null

# ---------------------------------------------------------------------------------------------
# 4. Repetitions
REPOS=$STATE/repos
mkdir -p "$RUN/pull"
LOAD_HWM=()
LOAD_OK=()
for ((r = 1; r <= REPS; r++)); do
    log "repetition $r/$REPS"
    # Ours: initial into a fresh repo, then incremental, then no-op.
    set_ref "$C1"
    ours bench "$RUN/keys/bench" "ours-$r" "$REF"
    timed ours_initial "$r" "${CMD[@]}"
    expect_ref "$REPOS/ours-$r" "$REF" "$C1"
    if ((r == 1)); then
        INITIAL_OBJECTS=$(find "$REPOS/ours-1/objects" -type f | wc -l)
        INITIAL_KB=$(du -sk "$REPOS/ours-1/objects" | cut -f1)
    fi
    set_ref "$C2"
    timed ours_incremental "$r" "${CMD[@]}"
    expect_ref "$REPOS/ours-$r" "$REF" "$C2"
    timed ours_noop "$r" "${CMD[@]}"
    grep -qi 'up to date' "$LOGS/ours_noop-$r.log" || die "no-op push did not say 'up to date'"

    # ostree pull-local --untrusted of the same commits into a fresh archive repo.
    pull=$RUN/pull/pull-$r
    ostree init --repo="$pull" --mode=archive
    set_ref "$C1"
    timed pull_initial "$r" ostree --repo="$pull" pull-local --untrusted "$SRC" "$REF"
    expect_ref "$pull" "$REF" "$C1"
    set_ref "$C2"
    timed pull_incremental "$r" ostree --repo="$pull" pull-local --untrusted "$SRC" "$REF"
    expect_ref "$pull" "$REF" "$C2"
    timed pull_noop "$r" ostree --repo="$pull" pull-local --untrusted "$SRC" "$REF"
    if [[ -n $SHM_SRC ]]; then
        pullc=$RUN/pull/pullcopy-$r
        ostree init --repo="$pullc" --mode=archive
        set_ref "$C1"
        timed pullcopy_initial "$r" ostree --repo="$pullc" pull-local --untrusted "$SHM_SRC" "$REF"
        expect_ref "$pullc" "$REF" "$C1"
        set_ref "$C2"
        timed pullcopy_incremental "$r" ostree --repo="$pullc" pull-local --untrusted "$SHM_SRC" "$REF"
        expect_ref "$pullc" "$REF" "$C2"
    fi

    # The initial commit again, into repos that already hold other content: the PUSHERS load
    # commits, copied in by pull-local (hardlinks, untimed). Every objects/XX directory
    # exists there, so each object is moved into place on its own, where a fresh repo takes
    # whole new directories.
    pullu=$RUN/pull/pullused-$r
    ostree init --repo="$pullu" --mode=archive
    for repo in "$REPOS/used-$r" "$pullu"; do
        ostree --repo="$repo" pull-local --untrusted "$SRC" "${LOAD_REFS[@]}" >/dev/null
    done
    set_ref "$C1"
    ours bench "$RUN/keys/bench" "used-$r" "$REF"
    timed ours_used "$r" "${CMD[@]}"
    expect_ref "$REPOS/used-$r" "$REF" "$C1"
    timed pull_used "$r" ostree --repo="$pullu" pull-local --untrusted "$SRC" "$REF"
    expect_ref "$pullu" "$REF" "$C1"

    # The Python ostree-push 1.2.0 (tunnel: ssh -R + ostree-receive-1, the gateway pulls).
    if ((HAVE_PY)); then
        set_ref "$C1"
        python_push "py-$r" "$REF"
        timed py_initial "$r" "${CMD[@]}"
        expect_ref "$REPOS/py-$r" "$REF" "$C1"
        set_ref "$C2"
        timed py_incremental "$r" "${CMD[@]}"
        expect_ref "$REPOS/py-$r" "$REF" "$C2"
        timed py_noop "$r" "${CMD[@]}"
        expect_ref "$REPOS/py-$r" "$REF" "$C2"
    fi

    # PUSHERS concurrent pushers, one user and one ref each, into one fresh shared repo.
    hwm_before=$(status_kb "$GW_PID" VmHWM)
    echo 5 >"/proc/$GW_PID/clear_refs" # resets VmHWM to the current RSS
    pids=()
    g0=$(gw_cpu)
    t0=$(now)
    for ((i = 0; i < PUSHERS; i++)); do
        ours "load$i" "$RUN/keys/load$i" "load-$r" "load/load$i"
        "${CMD[@]}" >"$LOGS/load-$r-$i.log" 2>&1 </dev/null &
        pids+=($!)
    done
    ok=0
    for ((i = 0; i < PUSHERS; i++)); do
        if wait "${pids[$i]}"; then ok=$((ok + 1)); else log "pusher $i failed: $(tail -n 3 "$LOGS/load-$r-$i.log")"; fi
    done
    t1=$(now)
    printf 'load_wall_cpu_gateway\t%s\t%s\t-\n' "$r" "$(elapsed "$g0" "$(gw_cpu)")" >>"$TSV"
    for ((i = 0; i < PUSHERS; i++)); do
        want=$(ostree --repo="$SRC" rev-parse "load/load$i")
        got=$(ostree --repo="$REPOS/load-$r" rev-parse "load/load$i" 2>/dev/null || true)
        [[ $got == "$want" ]] || { log "load/load$i not published in load-$r"; ok=$((ok > 0 ? ok - 1 : 0)); }
    done
    record load_wall "$r" "$(elapsed "$t0" "$t1")"
    hwm=$(status_kb "$GW_PID" VmHWM)
    LOAD_HWM+=("$hwm")
    LOAD_OK+=("$ok")
    printf 'hwm_before_load\t%s\t%s\t-\n' "$r" "$hwm_before" >>"$TSV"
    printf 'load_hwm_kb\t%s\t%s\t-\n' "$r" "$hwm" >>"$TSV"
    printf 'load_ok\t%s\t%s\t-\n' "$r" "$ok" >>"$TSV"
    log "load rep $r: $ok/$PUSHERS succeeded; gateway VmHWM ${hwm} kB during the load (before: ${hwm_before} kB)"
    # Nothing is deleted until the run ends: on ext4 without a journal (this kind of VM),
    # creating inodes stays slow for a minute or more after mass deletions (ext4 skips
    # recently freed inodes one by one), which would tax the next repetition's receive
    # (it creates one inode per object) but not pull-local (it hardlinks).
done
VMHWM_TOTAL=$(status_kb "$GW_PID" VmHWM)
VMRSS_END=$(status_kb "$GW_PID" VmRSS)

# ---------------------------------------------------------------------------------------------
# 5. Report
tree_json=$(cat "$DATA/tree.json")
cat >"$RUN/meta.json" <<EOF
{"preset": "$PRESET", "seed": $SEED, "source": "${BENCH_SOURCE:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}", "reps": $REPS, "pushers": $PUSHERS, "tree": $tree_json,
 "increment": $(cat "$DATA/increment.json"),
 "python": $HAVE_PY, "nproc": $(nproc), "cpu": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)",
 "mem_kb": $(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo), "kernel": "$(uname -r)",
 "ostree": "$(ostree --version | sed -n "s/^ *Version: '\(.*\)'/\1/p")",
 "load_start": "$LOAD_START", "load_end": "$(cut -d' ' -f1-3 /proc/loadavg)", "vmrss_end_kb": $VMRSS_END, "vmhwm_end_kb": $VMHWM_TOTAL,
 "initial_objects": $INITIAL_OBJECTS, "initial_kb": $INITIAL_KB, "c1": "$C1", "c2": "$C2"}
EOF
python3 "$ROOT/bench/report.py" "$TSV" "$RUN/meta.json" | tee "$RUN/results.md"
log "samples, logs and results in $RUN"
