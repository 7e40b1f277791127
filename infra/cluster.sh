#!/usr/bin/env bash
# A local multi-node Ray cluster on this one machine, for running lipforge's jobs with
# `ray job submit` the way they run on a real cluster: a head node and (by default) two
# worker nodes, token authentication, the dashboard (the job API) on http://127.0.0.1:8265.
# Every node has its own temp dir, logs and custom resource (`head`, `worker1`, `worker2`,
# ...), so tasks can be pinned to a node. (Ray registers the nodes under this machine's
# network address, not 127.0.0.1: `ray start` replaces a loopback --node-ip-address.)
# Jobs run with the nodes' environment: the project's .venv first on PATH and
# LIPFORGE_CACHE=<checkout>/.cache/lipforge, so an uploaded working dir uses the prepared assets.
#
#   infra/cluster.sh up [--workers N] [--head-cpus N] [--worker-cpus N]
#   infra/cluster.sh status
#   infra/cluster.sh down
#
# Settings (flags win over the environment):
#   LIPFORGE_CLUSTER_DIR            state, logs and Ray temp dirs (default /tmp/lipforge-cluster)
#   LIPFORGE_CLUSTER_PORT           GCS port, the address workers join (default 6379)
#   LIPFORGE_CLUSTER_DASHBOARD_PORT dashboard / job API port (default 8265)
#   LIPFORGE_CLUSTER_WORKERS        worker nodes (default 2)
#   LIPFORGE_CLUSTER_HEAD_CPUS      logical CPUs of the head (default: a quarter of this machine's, at least 1)
#   LIPFORGE_CLUSTER_WORKER_CPUS    logical CPUs of each worker (default: the rest split evenly, at least 1)
#   LIPFORGE_CLUSTER_WORKER_GPUS    GPUs of worker1 (default: all GPUs nvidia-smi lists; the other nodes get 0)
#   LIPFORGE_CLUSTER_OBJECT_STORE_MB object store per node (default: 10% of this machine's memory)
#
# The token: RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH if set, else Ray's default ~/.ray/auth_token
# (created with `ray get-auth-token --generate` when missing), so clients need only
# RAY_AUTH_MODE=token. What `ray start` prints goes to one log file per node under
# $LIPFORGE_CLUSTER_DIR/logs (its path is printed), never to the console.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV_BIN="$REPO/.venv/bin"
RAY="$VENV_BIN/ray"
PY="$VENV_BIN/python"
STATE="$(realpath -m "${LIPFORGE_CLUSTER_DIR:-/tmp/lipforge-cluster}")"
PIDS="$STATE/pids"
LOGS="$STATE/logs"
SETTINGS="$STATE/cluster.env"
START_TIMEOUT_S=120
STOP_TIMEOUT_S=30

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() {
  echo "cluster: $*" >&2
  exit 2
}

need_int() {  # NAME VALUE MIN [MAX]
  local max="${4:-1000000000}"
  if ! [[ "$2" =~ ^[0-9]{1,10}$ ]] || [ "$2" -lt "$3" ] || [ "$2" -gt "$max" ]; then
    die "$1 must be an integer from $3 to $max, got '$2'"
  fi
}

# The `ray start --block` process of each node, in start order (head first); one file per node.
node_names() {
  [ -d "$PIDS" ] || return 0
  local f
  for f in "$PIDS"/head.pid "$PIDS"/worker*.pid; do
    [ -f "$f" ] && basename "$f" .pid
  done
  return 0
}

alive() {  # PID: running (an exited process its parent has not reaped yet is not)
  local stat
  [[ "$1" =~ ^[0-9]+$ ]] && { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  [[ "${stat##*) }" != Z* ]]  # the state follows the parenthesised command name
}

node_pid() {  # NAME
  cat "$PIDS/$1.pid" 2>/dev/null || true
}

# Every process under PID (children, grandchildren, ...), PID included.
tree() {  # PID
  local pid="$1" child
  echo "$pid"
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
    tree "$child"
  done
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_in_use() {  # PORT: something listens on it (a closed connection's TIME_WAIT does not count)
  ! "$PY" -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

ray_env() {  # the environment every node and client command runs with
  export RAY_AUTH_MODE=token
  export RAY_USAGE_STATS_ENABLED=0
  export NO_ALBUMENTATIONS_UPDATE=1
  export PYTHONUNBUFFERED=1       # `ray start` writes its log lines as they happen
  export PATH="$VENV_BIN:$PATH"  # job drivers' and workers' `python` is the project's venv
  export LIPFORGE_CACHE="${LIPFORGE_CACHE:-$REPO/.cache/lipforge}"  # the checkout's prepared assets
  unset RAY_ADDRESS
}

token_location() {
  if [ -n "${RAY_AUTH_TOKEN:-}" ]; then
    echo "\$RAY_AUTH_TOKEN"
  elif [ -n "${RAY_AUTH_TOKEN_PATH:-}" ]; then
    echo "$RAY_AUTH_TOKEN_PATH"
  else
    echo "$HOME/.ray/auth_token"
  fi
}

ensure_token() {
  if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ -z "${RAY_AUTH_TOKEN_PATH:-}" ] && [ ! -s "$HOME/.ray/auth_token" ]; then
    echo "cluster: creating a Ray auth token in $HOME/.ray/auth_token"
    "$RAY" get-auth-token --generate >/dev/null 2>>"$LOGS/token.log"  # stdout is the token itself
  fi
}

wait_started() {  # NAME PID LOG: until `ray start` says the node runs; 1 when it exited (or timed out)
  local name="$1" pid="$2" log="$3" waited=0
  until grep -q "Ray runtime started" "$log" 2>/dev/null; do
    alive "$pid" || return 1
    if [ "$waited" -ge "$START_TIMEOUT_S" ]; then
      echo "cluster: the $name node is not up after ${START_TIMEOUT_S} s; see $log" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

launch_node() {  # NAME ARGS...: `ray start --block` in the background, its pid recorded
  local name="$1"
  shift
  local log="$LOGS/$name.log"
  mkdir -p "$STATE/ray/$name"
  : >"$log"
  nohup "$RAY" start --block --disable-usage-stats --temp-dir="$STATE/ray/$name" \
    --dashboard-agent-listen-port="$(free_port)" --object-store-memory="$OBJECT_STORE_BYTES" \
    --memory="$MEMORY_BYTES" "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
}

# COUNT CPUS: until the GCS lists COUNT alive nodes, `ray status` (the autoscaler's report,
# refreshed every few seconds) counts all CPUS, and the job API answers.
wait_nodes() {
  "$PY" - "$PORT" "$DASHBOARD_PORT" "$1" "$2" "$START_TIMEOUT_S" <<'EOF'
import json
import sys
import time

from ray._raylet import GcsClient
from ray.job_submission import JobSubmissionClient

port, dashboard, want, cpus, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
gcs = GcsClient(address=f"127.0.0.1:{port}")
deadline = time.monotonic() + timeout
alive, counted, api = 0, False, False
while time.monotonic() < deadline:
    try:
        alive = sum(1 for n in gcs.get_all_node_info(timeout=5).values() if n.state == 0)  # 0: ALIVE
        report = json.loads(gcs.internal_kv_get(b"__autoscaling_status", None) or "{}")  # what `ray status` prints
        counted = report.get("load_metrics_report", {}).get("usage", {}).get("CPU", [0, 0])[1] >= cpus
        JobSubmissionClient(f"http://127.0.0.1:{dashboard}")  # asks the job API its version, with the token
        api = True
    except Exception:
        api = False
    if alive >= want and counted and api:
        sys.exit(0)
    time.sleep(1)
report = "counts them all" if counted else f"does not yet count {cpus:.0f} CPUs"
print(f"cluster: {alive} of {want} nodes alive, `ray status` {report}, job API {'up' if api else 'not answering'} after {timeout:.0f} s", file=sys.stderr)
sys.exit(1)
EOF
}

load_settings() {
  # shellcheck disable=SC1090
  [ -f "$SETTINGS" ] && . "$SETTINGS"
  return 0
}

print_info() {
  load_settings
  local nodes="${NODES:-?}"
  cat <<EOF
lipforge cluster: up ($nodes nodes on this machine: head + ${WORKERS:-?} workers; CPUs head ${HEAD_CPUS:-?}, each worker ${WORKER_CPUS:-?})
  address      127.0.0.1:${PORT}  (GCS; ray.init(address="127.0.0.1:${PORT}"))
  job API      http://127.0.0.1:${DASHBOARD_PORT}  (dashboard)
  resources    $(resource_names)
  token        $(token_location)  (clients set RAY_AUTH_MODE=token)
  logs         $LOGS/  (ray start per node; Ray's own: $STATE/ray/<node>/session_latest/logs)
submit a job from the repository root (paths in a job's arguments absolute: docs/cluster.md):
  RAY_ADDRESS=http://127.0.0.1:${DASHBOARD_PORT} RAY_AUTH_MODE=token .venv/bin/ray job submit --working-dir . -- \\
    python -m pipelines build configs/demo.yaml --root "\$PWD/data" --set source.urls="\$PWD/data/sampleweb/urls.parquet"
stop it:  infra/cluster.sh down
EOF
}

resource_names() {
  local names="head" i
  for ((i = 1; i <= ${WORKERS:-0}; i++)); do names="$names, worker$i"; done
  echo "$names (1 each)"
}

# Prints "up", "down" or "partial".
state() {
  local name total=0 running=0
  for name in $(node_names); do
    total=$((total + 1))
    if alive "$(node_pid "$name")"; then running=$((running + 1)); fi
  done
  if [ "$total" -eq 0 ] || [ "$running" -eq 0 ]; then
    echo down
  elif [ "$running" -eq "$total" ]; then
    echo up
  else
    echo partial
  fi
}

launch_head() {
  launch_node head --head --port="$PORT" --include-dashboard=true --dashboard-host=127.0.0.1 \
    --dashboard-port="$DASHBOARD_PORT" --ray-client-server-port="$(free_port)" \
    --num-cpus="$HEAD_CPUS" --num-gpus=0 --resources='{"head": 1}'
}

launch_worker() {  # I: worker I joins the head; worker1 gets the GPUs
  local gpus=0
  [ "$1" -ne 1 ] || gpus="$GPUS"
  launch_node "worker$1" --address="127.0.0.1:$PORT" --num-cpus="$WORKER_CPUS" --num-gpus="$gpus" \
    --resources="{\"worker$1\": 1}"
}

# Until node NAME runs; once, when its `ray start` gave up (Ray waits 30 s for a new raylet
# to register, which a busy machine can exceed), start it again with LAUNCHER ARGS...
wait_or_retry() {  # NAME LAUNCHER ARGS...
  local name="$1" log="$LOGS/$1.log"
  shift
  wait_started "$name" "$(node_pid "$name")" "$log" && return 0
  alive "$(node_pid "$name")" && return 1  # still starting after the timeout: no second try
  mv "$log" "$LOGS/$name.failed.log"
  echo "cluster: the $name node did not start; trying once more (the first try's log: $LOGS/$name.failed.log)"
  "$@"
  wait_started "$name" "$(node_pid "$name")" "$log" && return 0
  echo "cluster: the $name node did not start; the end of $log:" >&2
  tail -n 15 "$log" >&2 || true
  return 1
}

cmd_up() {
  WORKERS="${LIPFORGE_CLUSTER_WORKERS:-2}"
  HEAD_CPUS="${LIPFORGE_CLUSTER_HEAD_CPUS:-}"
  WORKER_CPUS="${LIPFORGE_CLUSTER_WORKER_CPUS:-}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --workers) [ $# -ge 2 ] || die "--workers needs a value"; WORKERS="$2"; shift 2 ;;
      --head-cpus) [ $# -ge 2 ] || die "--head-cpus needs a value"; HEAD_CPUS="$2"; shift 2 ;;
      --worker-cpus) [ $# -ge 2 ] || die "--worker-cpus needs a value"; WORKER_CPUS="$2"; shift 2 ;;
      *) die "up: unknown option '$1' (see infra/cluster.sh --help)" ;;
    esac
  done
  PORT="${LIPFORGE_CLUSTER_PORT:-6379}"
  DASHBOARD_PORT="${LIPFORGE_CLUSTER_DASHBOARD_PORT:-8265}"
  need_int LIPFORGE_CLUSTER_PORT "$PORT" 1 65535
  need_int LIPFORGE_CLUSTER_DASHBOARD_PORT "$DASHBOARD_PORT" 1 65535
  [ "$PORT" != "$DASHBOARD_PORT" ] || die "LIPFORGE_CLUSTER_PORT and LIPFORGE_CLUSTER_DASHBOARD_PORT are both $PORT"
  need_int "--workers" "$WORKERS" 0 64
  [ -x "$RAY" ] || die "$RAY not found: run \`make setup\` first"

  case "$(state)" in
    up)
      echo "cluster: already up"
      print_info
      return 0
      ;;
    partial)
      die "some nodes of the cluster in $STATE have stopped (see $LOGS/); run \`infra/cluster.sh down\` first"
      ;;
  esac

  local cpus
  cpus="$(nproc)"
  HEAD_CPUS="${HEAD_CPUS:-$(((cpus / 4) > 1 ? cpus / 4 : 1))}"
  need_int "--head-cpus" "$HEAD_CPUS" 0
  if [ -z "$WORKER_CPUS" ]; then
    WORKER_CPUS=1
    if [ "$WORKERS" -gt 0 ] && [ $(((cpus - HEAD_CPUS) / WORKERS)) -gt 1 ]; then
      WORKER_CPUS=$(((cpus - HEAD_CPUS) / WORKERS))
    fi
  fi
  need_int "--worker-cpus" "$WORKER_CPUS" 0
  GPUS="${LIPFORGE_CLUSTER_WORKER_GPUS:-}"
  if [ -z "$GPUS" ]; then
    GPUS=0
    if command -v nvidia-smi >/dev/null 2>&1; then GPUS="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)"; fi
  fi
  need_int LIPFORGE_CLUSTER_WORKER_GPUS "$GPUS" 0
  local mem_kb object_store_mb
  mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  object_store_mb="${LIPFORGE_CLUSTER_OBJECT_STORE_MB:-$((mem_kb / 1024 / 10))}"
  need_int LIPFORGE_CLUSTER_OBJECT_STORE_MB "$object_store_mb" 100
  OBJECT_STORE_BYTES=$((object_store_mb * 1024 * 1024))
  MEMORY_BYTES=$((mem_kb * 1024 * 6 / 10 / (WORKERS + 1)))  # the nodes share this machine's memory

  for port in "$PORT" "$DASHBOARD_PORT"; do
    if port_in_use "$port"; then
      die "port $port on 127.0.0.1 is in use (another Ray cluster? \`ray status\`); choose others with LIPFORGE_CLUSTER_PORT / LIPFORGE_CLUSTER_DASHBOARD_PORT"
    fi
  done

  rm -rf "$PIDS"
  mkdir -p "$PIDS" "$LOGS"
  ray_env
  ensure_token
  cat >"$SETTINGS" <<EOF
PORT=$PORT
DASHBOARD_PORT=$DASHBOARD_PORT
WORKERS=$WORKERS
HEAD_CPUS=$HEAD_CPUS
WORKER_CPUS=$WORKER_CPUS
NODES=$((WORKERS + 1))
EOF

  echo "cluster: starting the head node (logs: $LOGS/head.log)"
  launch_head
  if ! wait_or_retry head launch_head; then
    cmd_down >/dev/null
    exit 1
  fi
  local i
  if [ "$WORKERS" -gt 0 ]; then echo "cluster: starting $WORKERS worker nodes (logs: $LOGS/worker*.log)"; fi
  for ((i = 1; i <= WORKERS; i++)); do  # together: they only join the head
    launch_worker "$i"
  done
  for ((i = 1; i <= WORKERS; i++)); do
    if ! wait_or_retry "worker$i" launch_worker "$i"; then
      cmd_down >/dev/null
      exit 1
    fi
  done
  if ! wait_nodes "$((WORKERS + 1))" "$((HEAD_CPUS + WORKERS * WORKER_CPUS))"; then
    echo "cluster: see $LOGS/ and $STATE/ray/*/session_latest/logs/" >&2
    cmd_down >/dev/null
    exit 1
  fi
  print_info
}

cmd_status() {
  case "$(state)" in
    down)
      echo "lipforge cluster: not running ($STATE)"
      return 1
      ;;
    partial)
      echo "lipforge cluster: partly running; nodes whose process has exited:"
      local name
      for name in $(node_names); do
        alive "$(node_pid "$name")" || echo "  $name (see $LOGS/$name.log)"
      done
      echo "run \`infra/cluster.sh down\`, then \`up\`"
      return 1
      ;;
  esac
  print_info
  load_settings
  ray_env
  echo
  "$RAY" status --address="127.0.0.1:$PORT" 2>>"$LOGS/status.log" \
    || echo "cluster: \`ray status\` failed; see $LOGS/status.log" >&2
}

cmd_down() {
  local names
  names="$(node_names)"
  if [ -z "$names" ]; then
    echo "lipforge cluster: not running"
    return 0
  fi
  # Every process of every node, listed before any is signalled (an orphan is re-parented).
  local name pid procs=() left=()
  for name in $names; do
    pid="$(node_pid "$name")"
    if alive "$pid"; then
      mapfile -t -O "${#procs[@]}" procs < <(tree "$pid")
      kill -TERM "$pid" 2>/dev/null || true  # `ray start --block` drains its node and stops its processes
    fi
  done
  local waited=0
  while :; do
    left=()
    for pid in "${procs[@]}"; do
      if alive "$pid"; then left+=("$pid"); fi
    done
    [ "${#left[@]}" -eq 0 ] && break
    if [ "$waited" -ge "$STOP_TIMEOUT_S" ]; then
      echo "cluster: still running after ${STOP_TIMEOUT_S} s, killing: ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 1
    waited=$((waited + 1))
  done
  # Anything else still running from this cluster's temp dirs (started after the listing above).
  mapfile -t left < <(ps -eo pid=,args= | DIR="$STATE/ray/" awk 'index($0, ENVIRON["DIR"]) {print $1}')
  if [ "${#left[@]}" -gt 0 ]; then
    echo "cluster: stopping leftover processes of $STATE: ${left[*]}"
    kill -TERM "${left[@]}" 2>/dev/null || true
    sleep 3
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
  rm -rf "$PIDS"
  echo "lipforge cluster: stopped (logs kept in $LOGS/)"
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  up) cmd_up "$@" ;;
  down) [ $# -eq 0 ] || die "down takes no arguments"; cmd_down ;;
  status) [ $# -eq 0 ] || die "status takes no arguments"; cmd_status ;;
  -h | --help | help) usage ;;
  "") usage >&2; exit 2 ;;
  *) echo "cluster: unknown command '$command'" >&2; usage >&2; exit 2 ;;
esac
