#!/usr/bin/env bash
# Run the example on Flower's deployment engine, everything on 127.0.0.1:
# start a SuperLink and NODES SuperNodes, wait until they are ready (poll), run the app
# with `flwr run --stream`, then stop every process this script started (trap), also on
# error or Ctrl-C.
#
#   examples/flower_app/run_local.sh                      # 3 nodes, secagg+ (semi-honest)
#   NODES=5 ACTIVE=1 examples/flower_app/run_local.sh     # active mode: keys made for you
#   RUN_CONFIG='num-server-rounds=1 result-path="/tmp/r.json"' examples/flower_app/run_local.sh
#
# Environment: NODES (default 3), ACTIVE (1: generate an identity registry and one signing
# key per node, run in active mode), RUN_CONFIG (extra `--run-config` pairs), READY_TIMEOUT
# (seconds, default 60), KEEP_WORKDIR (1: keep the logs), FLWR_HOME (default: a temporary
# directory). Needs flwr (`pip install 'secagg[flower]'`) and secagg on the PATH/venv.
set -euo pipefail

APP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NODES=${NODES:-3}
ACTIVE=${ACTIVE:-0}
RUN_CONFIG=${RUN_CONFIG:-}
READY_TIMEOUT=${READY_TIMEOUT:-60}
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/secagg-flower.XXXXXX")
export FLWR_HOME=${FLWR_HOME:-$WORK/flwr_home}
export FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1 PYTHONUNBUFFERED=1
mkdir -p "$FLWR_HOME"

started=()  # the PIDs this script started (each leads its own session)

# Every live descendant of the given PIDs (Flower starts helpers in sessions of their own).
descendants() {
    local frontier=("$@") found=() pid child
    while ((${#frontier[@]})); do
        pid=${frontier[0]}
        frontier=("${frontier[@]:1}")
        for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
            found+=("$child")
            frontier+=("$child")
        done
    done
    echo "${found[@]:-}"
}

cleanup() {
    local status=$? all pid
    trap - EXIT INT TERM
    all="${started[*]:-} $(descendants "${started[@]:-}")"
    for pid in $all; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do  # up to 5 s for a clean exit
        local alive=0
        for pid in $all; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in $all; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ ${KEEP_WORKDIR:-0} == 1 || $status != 0 ]]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT INT TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Poll `check` every 0.3 s until it succeeds; fail after READY_TIMEOUT seconds.
wait_for() {
    local what=$1 deadline=$((SECONDS + READY_TIMEOUT))
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "timed out waiting for $what (logs in $WORK)" >&2
            return 1
        fi
        sleep 0.3
    done
}

LINK_PORT=$(free_port)
setsid flower-superlink --insecure --host 127.0.0.1 --port "$LINK_PORT" \
    --disable-runtime-dependency-installation >"$WORK/superlink.log" 2>&1 &
started+=($!)

cat >"$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "local-deployment"

[superlink.local-deployment]
address = "127.0.0.1:$LINK_PORT"
insecure = true
EOF
# Ready when its Control API answers, not merely when the port is open: started any
# earlier, `flwr run` fails with "Connection to the SuperLink is unavailable".
wait_for "the SuperLink" flwr ls local-deployment --format json

EXTRA_CONFIG=""
if [[ $ACTIVE == 1 ]]; then
    names=()
    for ((i = 0; i < NODES; i++)); do names+=("node$i"); done
    "$PYTHON" -m secagg.integrations.flower.identity "$WORK/keys" "${names[@]}" >/dev/null
    EXTRA_CONFIG="mode=\"active\" registry=\"$WORK/keys/registry.json\""
fi

for ((i = 0; i < NODES; i++)); do
    node_config="partition-id=$i"
    if [[ $ACTIVE == 1 ]]; then
        node_config+=" secagg-signing-key=\"$WORK/keys/node$i.key\""
        node_config+=" secagg-registry=\"$WORK/keys/registry.json\""
    fi
    setsid flower-supernode --insecure --superlink "127.0.0.1:$LINK_PORT" --host 127.0.0.1 \
        --port "$(free_port)" --node-config "$node_config" >"$WORK/supernode$i.log" 2>&1 &
    started+=($!)
done
for ((i = 0; i < NODES; i++)); do
    wait_for "SuperNode $i to register" grep -q "SuperNode ID" "$WORK/supernode$i.log"
done

echo "SuperLink on 127.0.0.1:$LINK_PORT, $NODES SuperNodes ready; running the app" >&2
flwr run "$APP_DIR" local-deployment --stream \
    --run-config "min-nodes=$NODES $EXTRA_CONFIG $RUN_CONFIG"
