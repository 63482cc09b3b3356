#!/usr/bin/env bash
# Start, stop or inspect a local Ray head for the computenet test bed.
#
#   scripts/ray-head.sh start|stop|status
#
# The head listens on 127.0.0.1 only, with token authentication OFF (RAY_AUTH_MODE=disabled):
# a test bed for one machine, not a cluster to expose. It runs from an EMPTY environment (only
# PATH, HOME, LANG and Ray's own settings), because every Ray job inherits the environment
# the head was started with: a secret exported in your shell must not reach tenants' jobs.
#
# Settings (environment; defaults in brackets):
#   RAY_HEAD_PORT        GCS port [6390]
#   RAY_DASHBOARD_PORT   dashboard / Jobs API port [8265]; the executor's address
#   RAY_AGENT_PORT       dashboard agent port [52365]
#   RAY_CLIENT_PORT      Ray client server port [10001]
#   RAY_HEAD_CPUS        CPUs the head offers to jobs [2]
#   RAY_HEAD_GPUS        GPUs it declares [Ray detects them]; a number on a machine without
#                        GPUs declares a resource only (jobs get CUDA_VISIBLE_DEVICES, no device)
#   RAY_HEAD_DIR         state: pid file, log, Ray's temp dir [/tmp/computenet-ray-$RAY_HEAD_PORT]
#   RAY_BIN              the ray command [ray on PATH]
#
# Start takes 6-20 s (more on a loaded machine) and about 1.6 GB of memory here. Stop sends
# TERM to the head (`ray start --block`, which stops what it started) and KILL to what is left
# of its session after 40 s; it never runs `ray stop`, which would stop every Ray head on the
# machine.
set -euo pipefail

head_port=${RAY_HEAD_PORT:-6390}
dash_port=${RAY_DASHBOARD_PORT:-8265}
agent_port=${RAY_AGENT_PORT:-52365}
client_port=${RAY_CLIENT_PORT:-10001}
cpus=${RAY_HEAD_CPUS:-2}
dir=${RAY_HEAD_DIR:-/tmp/computenet-ray-$head_port}
ray_bin=${RAY_BIN:-$(command -v ray || true)}
address="http://127.0.0.1:$dash_port"
pid_file="$dir/head.pid"

usage() {
  # The comment block at the top of this file, without its '#'.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

head_pid() {
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null && cat "$pid_file"
}

jobs_api_answers() {
  # The Jobs API is the last part of the head to come up; its job list answering means ready.
  python3 - "$address" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/api/jobs/", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

start() {
  if pid=$(head_pid); then
    if jobs_api_answers; then
      echo "$address"
      return 0
    fi
    echo "ray-head: a head (pid $pid) is starting or stuck; see $dir/head.log, or run: $0 stop" >&2
    return 1
  fi
  if [ -z "$ray_bin" ]; then
    echo "ray-head: the ray command is not on PATH; install it with: pip install -e '.[ray]'" >&2
    return 1
  fi
  mkdir -p "$dir"
  # setsid: the head gets a session of its own, so stop can find what is left of it by id.
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" LANG=C.UTF-8 \
    RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 \
    setsid "$ray_bin" start --head --block --node-ip-address=127.0.0.1 --port="$head_port" \
    --num-cpus="$cpus" ${RAY_HEAD_GPUS:+--num-gpus="$RAY_HEAD_GPUS"} --dashboard-host=127.0.0.1 --dashboard-port="$dash_port" \
    --dashboard-agent-listen-port="$agent_port" --ray-client-server-port="$client_port" \
    --temp-dir="$dir/t" --disable-usage-stats >"$dir/head.log" 2>&1 </dev/null &
  echo $! >"$pid_file"
  for _ in $(seq 1 120); do
    if jobs_api_answers; then
      echo "$address"
      return 0
    fi
    if ! head_pid >/dev/null; then
      echo "ray-head: the head exited while starting; its log:" >&2
      tail -n 30 "$dir/head.log" >&2
      return 1
    fi
    sleep 0.5
  done
  echo "ray-head: the Jobs API at $address did not answer within 60 s; see $dir/head.log" >&2
  return 1
}

stop() {
  if ! pid=$(head_pid); then
    rm -f "$pid_file"
    echo "ray-head: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 80); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  # What ignored TERM (a job's stray child) goes now; only this head's session, by its id.
  pkill -KILL -s "$pid" 2>/dev/null || true
  rm -f "$pid_file"
  echo "ray-head: stopped"
}

status() {
  if pid=$(head_pid) && jobs_api_answers; then
    echo "running (pid $pid) at $address"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
