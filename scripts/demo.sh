#!/usr/bin/env bash
# ostree-gateway demo: a fresh gateway in ./demo-state, administered with the admin CLI.
#
# Run it with `make demo` (installs what is missing and builds first), or directly after
# `cargo build`. Every run starts from an empty ./demo-state.
#
# Sections:
#   1. fresh state dir and config
#   2. users and SSH keys
#   3. teams
#   4. repositories
#   5. access rules
#   6. a local commit to publish
#   7. SSH server
#   8. push with ostree-push (native), a refused push, then the classic OpenSSH tunnel flow
#   9. what the gateway knows: users, keys, repos, rules, audit
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=${OSTREE_GATEWAY_BIN:-$ROOT/target/debug/ostree-gateway}
STATE=$ROOT/demo-state
CONFIG=$STATE/gateway.toml
LISTEN_HOST=127.0.0.1
LISTEN_PORT=2222
SERVER_PID=""

cleanup() {
    local status=$?
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 ]]; then
        echo "demo: FAILED (exit $status); state left in $STATE" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -t 1 ]]; then
    BOLD=$'\e[1m' DIM=$'\e[2m' RESET=$'\e[0m'
else
    BOLD="" DIM="" RESET=""
fi

section() {
    printf '\n%s== %s ==%s\n' "$BOLD" "$*" "$RESET"
}

# Prints a command line the way one would type it (quoting only where needed).
show_command() {
    local out="\$" arg
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then
            out+=" $arg"
        elif [[ $arg != *"'"* ]]; then
            out+=" '$arg'"
        else
            out+=" $(printf '%q' "$arg")"
        fi
    done
    printf '%s%s%s\n' "$DIM" "$out" "$RESET"
}

# Runs the admin CLI on the demo state, showing the command first.
gw() {
    show_command ostree-gateway "$@"
    "$BIN" --config "$CONFIG" --state-dir "$STATE" "$@"
}

# Waits until something accepts TCP connections on host:port (for the server section).
wait_for_port() {
    local host=$1 port=$2 tries=${3:-50}
    for ((i = 0; i < tries; i++)); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "demo: nothing listens on $host:$port" >&2
    return 1
}

if [[ ! -x $BIN ]]; then
    echo "demo: $BIN not found; run 'make demo' or 'cargo build' first" >&2
    exit 1
fi
for tool in ostree ssh-keygen; do
    command -v "$tool" >/dev/null || { echo "demo: $tool is missing; run 'make deps'" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------------
section "1. Fresh state in $STATE"
rm -rf -- "$STATE"
mkdir -p "$STATE"
cat >"$CONFIG" <<EOF
# Demo config: everything lives in ./demo-state; the server listens on loopback only.
state_dir = "$STATE"

[server]
listen = "$LISTEN_HOST:$LISTEN_PORT"

[log]
level = "info"
EOF
echo "config: $CONFIG"

# ---------------------------------------------------------------------------------------------
section "2. Users and SSH keys"
gw user add demo
gw user add reviewer
ssh-keygen -q -t ed25519 -N '' -C "demo@ostree-gateway-demo" -f "$STATE/demo_ed25519"
gw key add demo "$STATE/demo_ed25519.pub"

# ---------------------------------------------------------------------------------------------
section "3. Teams"
gw team add publishers
gw team add-member publishers demo

# ---------------------------------------------------------------------------------------------
section "4. Repositories"
gw repo add demo --init
REPO_PATH=$STATE/repos/demo
echo "ostree sees: core.mode=$(ostree --repo="$REPO_PATH" config get core.mode)"

# ---------------------------------------------------------------------------------------------
section "5. Access rules (first match decides; no match denies)"
gw rule add --repo demo --ref 'app/**' --team publishers --allow create,update \
    --comment "publishers ship apps, fast-forward only"
gw rule add --repo '**' --ref 'users/{user}/**' --everyone --allow all \
    --comment "everyone owns users/<name>/"
gw rule add --repo '**' --ref 'app/**' --everyone --deny force,delete --position 1 \
    --comment "nobody rewrites or deletes published apps"

# ---------------------------------------------------------------------------------------------
section "6. A local commit to publish"
SOURCE=$STATE/source-repo
TREE=$STATE/source-tree
ostree init --repo="$SOURCE" --mode=archive
mkdir -p "$TREE/usr/share/demo"
echo "hello from the ostree-gateway demo" >"$TREE/usr/share/demo/hello.txt"
COMMIT=$(ostree commit --repo="$SOURCE" --branch=app/org.example.Demo/x86_64/stable \
    --tree=dir="$TREE" --subject="demo commit")
echo "committed $COMMIT to app/org.example.Demo/x86_64/stable in $SOURCE"

# ---------------------------------------------------------------------------------------------
section "7. SSH server on $LISTEN_HOST (ephemeral port)"
show_command ostree-gateway serve --listen "$LISTEN_HOST:0"
"$BIN" --config "$CONFIG" --state-dir "$STATE" serve --listen "$LISTEN_HOST:0" \
    >"$STATE/serve.out" 2>"$STATE/serve.log" &
SERVER_PID=$!
for ((i = 0; i < 100; i++)); do
    LISTEN_PORT=$(sed -n 's/^ostree-gateway listening on .*:\([0-9]*\)$/\1/p' "$STATE/serve.out")
    [[ -n $LISTEN_PORT ]] && break
    sleep 0.1
done
[[ -n $LISTEN_PORT ]] || { cat "$STATE/serve.log" >&2; exit 1; }
wait_for_port "$LISTEN_HOST" "$LISTEN_PORT"
echo "listening on $LISTEN_HOST:$LISTEN_PORT; host key $(ssh-keygen -lf "$STATE/host_keys/ssh_host_ed25519_key.pub")"
echo "[$LISTEN_HOST]:$LISTEN_PORT $(cat "$STATE/host_keys/ssh_host_ed25519_key.pub")" >"$STATE/known_hosts"

# ---------------------------------------------------------------------------------------------
section "8. Push with ostree-push (the gateway's native protocol)"
PUSH_BIN=${OSTREE_PUSH_BIN:-$ROOT/target/debug/ostree-push}
REF=app/org.example.Demo/x86_64/stable
PUSH=("$PUSH_BIN" --repo "$SOURCE" -i "$STATE/demo_ed25519" -o UserKnownHostsFile="$STATE/known_hosts"
      -o IdentitiesOnly=yes)
DEST="ssh://demo@$LISTEN_HOST:$LISTEN_PORT/demo"
show_command ostree-push --repo "$SOURCE" -i demo_ed25519 "$DEST" "$REF"
"${PUSH[@]}" "$DEST" "$REF"
echo "published: $(ostree --repo="$REPO_PATH" rev-parse "$REF") (local: $COMMIT)"
ostree --repo="$REPO_PATH" fsck | tail -n 1

echo
echo "A push outside the allowed refs is refused, with the reason, and audited:"
ostree commit --repo="$SOURCE" --branch=release/1.0 --tree=dir="$TREE" --subject="not allowed" >/dev/null
show_command ostree-push --repo "$SOURCE" -i demo_ed25519 "$DEST" release/1.0
"${PUSH[@]}" "$DEST" release/1.0 || echo "(exit $?)"

# ---------------------------------------------------------------------------------------------
section "8b. The classic flow, as the Python ostree-push 1.2.0 drives OpenSSH"
# A tiny HTTP server serves the source repo; `ssh -R` tunnels it; the gateway pulls through it.
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$SOURCE" >"$STATE/http.out" 2>/dev/null &
HTTP_PID=$!
trap 'kill $HTTP_PID 2>/dev/null || true; cleanup' EXIT
for ((i = 0; i < 100; i++)); do
    HTTP_PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$STATE/http.out")
    [[ -n $HTTP_PORT ]] && break
    sleep 0.1
done
SSH=(ssh -F /dev/null -i "$STATE/demo_ed25519" -p "$LISTEN_PORT" -o IdentitiesOnly=yes -o BatchMode=yes
     -o UserKnownHostsFile="$STATE/known_hosts" -o ControlPath="$STATE/ssh-control")
"${SSH[@]}" -M -f -N demo@"$LISTEN_HOST"
RPORT=$("${SSH[@]}" -O forward -R "0:127.0.0.1:$HTTP_PORT" demo@"$LISTEN_HOST")
SCRATCH=users/demo/scratch
ostree commit --repo="$SOURCE" --branch="$SCRATCH" --tree=dir="$TREE" --subject="scratch" >/dev/null
show_command ssh demo@gateway ostree-receive-1 demo "http://127.0.0.1:$RPORT" "$SCRATCH"
"${SSH[@]}" demo@"$LISTEN_HOST" ostree-receive-1 demo "http://127.0.0.1:$RPORT" "$SCRATCH"
"${SSH[@]}" -O exit demo@"$LISTEN_HOST" 2>/dev/null || true

# ---------------------------------------------------------------------------------------------
section "9. What the gateway knows"
gw user list
echo
gw key list
echo
gw repo list
echo
gw rule list
echo
gw audit

section "Done"
echo "state: $STATE (removed on the next run)"
