#!/usr/bin/env bash
# A/B of the tunnel path (issue 7): the unmodified Python ostree-push 1.2.0 pushing the bench's
# data to two gateway binaries in the same run, alternating, initial and incremental pushes.
# Used to compare the gateway's own verified fetch with libostree's HTTP pull (commit 29d4bde
# and earlier pulled with libostree).
#
#   bench/tunnel-ab.sh A_GATEWAY B_GATEWAY [--preset small|default] [--reps N]
#
# Needs the data `bench/run.sh` generates (same preset, seed 1) and `make python-ostree-push`.
# Prints a markdown table of medians (min-max).
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 2 ]] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
A=$1 B=$2
shift 2
PRESET=default REPS=3
while (($#)); do
    case $1 in
        --preset) PRESET=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        *) echo "tunnel-ab: unknown argument $1" >&2; exit 2 ;;
    esac
done
WORK=${BENCH_WORK:-$ROOT/target-bench/work}
DATA=$(ls -d "$WORK"/data-"$PRESET"-s1-* | head -n 1)
SRC=$DATA/repo REF=bench/app
read -r C1 C2 _ <"$DATA/commits"
PY_PUSH=${OSTREE_PUSH_VENV:-$ROOT/target/ostree-push-venv}/bin/ostree-push
[[ -x $PY_PUSH ]] || { echo "tunnel-ab: run make python-ostree-push first" >&2; exit 1; }
RUN=$(mktemp -d "$WORK/ab-XXXXXX")
ssh-keygen -q -t ed25519 -N '' -C bench -f "$RUN/key"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$RUN/a/repos" "$RUN/b/repos"' EXIT

start() { # name binary → PORT_<name>
    local name=$1 bin=$2 state=$RUN/$1 port=""
    gwc() { "$bin" --state-dir "$state" "$@" >/dev/null; }
    gwc user add bench
    gwc key add bench "$RUN/key.pub"
    gwc rule add --repo '**' --ref '**' --user bench --allow create,update
    for ((r = 1; r <= REPS; r++)); do gwc repo add "py-$r" --init; done
    "$bin" --state-dir "$state" serve --listen 127.0.0.1:0 >"$RUN/$name.out" 2>"$RUN/$name.log" &
    PIDS+=($!)
    for ((i = 0; i < 200; i++)); do
        sleep 0.05
        port=$(sed -n 's/^ostree-gateway listening on .*:\([0-9]*\)$/\1/p' "$RUN/$name.out")
        [[ -n $port ]] && break
    done
    [[ -n $port ]] || { echo "tunnel-ab: gateway $name did not start" >&2; exit 1; }
    echo "[127.0.0.1]:$port $(cat "$state/host_keys/ssh_host_ed25519_key.pub")" >>"$RUN/known_hosts"
    printf -v "PORT_$name" '%s' "$port"
}
start a "$A"
start b "$B"

set_ref() { ostree --repo="$SRC" refs --create="$REF" --force "$1"; rm -f "$SRC/summary" "$SRC/summary.sig"; }
push() { # name rep → seconds
    local port_var=PORT_$1 t0 t1
    t0=$EPOCHREALTIME
    env -u SSH_AUTH_SOCK -u OSTREE_REPO HOME="$RUN" "$PY_PUSH" --repo "$SRC" -i "$RUN/key" \
        -o UserKnownHostsFile="$RUN/known_hosts" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes \
        -p "${!port_var}" "ssh://bench@127.0.0.1/py-$2" "$REF" >>"$RUN/push.log" 2>&1
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
declare -A S
for ((r = 1; r <= REPS; r++)); do
    for name in a b; do
        set_ref "$C1"
        S[$name-initial]+="$(push "$name" "$r") "
        set_ref "$C2"
        S[$name-incremental]+="$(push "$name" "$r") "
    done
    echo "tunnel-ab: rep $r: ${S[a-initial]}| ${S[b-initial]}" >&2
done
stat() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END {
    printf "%.3f s (%.3f-%.3f)", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR] }'; }
echo "| Python ostree-push 1.2.0 | A: $A | B: $B |"
echo "| --- | --- | --- |"
for kind in initial incremental; do
    echo "| $kind | $(stat "${S[a-$kind]}") | $(stat "${S[b-$kind]}") |"
done
