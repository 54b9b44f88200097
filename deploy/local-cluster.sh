#!/usr/bin/env bash
# A one-node Ray cluster on this machine for `landscape submit`: loopback only,
# dashboard and metrics export on 127.0.0.1, token authentication, and the
# Python that has landscape installed (so a job's `python` imports ray and landscape).
#
#   deploy/local-cluster.sh up       start it; prints the two lines to paste (or: source "$DIR/env")
#   deploy/local-cluster.sh status   is it up, where, which jobs
#   deploy/local-cluster.sh down     stop its jobs, then the node (only this cluster's processes)
#
# Settings (environment): LANDSCAPE_CLUSTER_DIR (state: token, env file, Ray's temp
# dir; default ~/.landscape/cluster, keep it short: Ray's socket paths live under it),
# LANDSCAPE_PYTHON (default: this checkout's .venv/bin/python, else `python3`),
# LANDSCAPE_RAY_PORT (GCS, 6379), LANDSCAPE_DASHBOARD_PORT (8265),
# LANDSCAPE_METRICS_PORT (8080), LANDSCAPE_NUM_CPUS (all), LANDSCAPE_RAY_START_ARGS (more `ray start` flags).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
dir="${LANDSCAPE_CLUSTER_DIR:-$HOME/.landscape/cluster}"
if [[ -n "${LANDSCAPE_PYTHON:-}" ]]; then py="$LANDSCAPE_PYTHON"
elif [[ -x "$repo/.venv/bin/python" ]]; then py="$repo/.venv/bin/python"
else py="$(command -v python3)"; fi
bin="$(dirname "$py")"
gcs_port="${LANDSCAPE_RAY_PORT:-6379}"
dash_port="${LANDSCAPE_DASHBOARD_PORT:-8265}"
metrics_port="${LANDSCAPE_METRICS_PORT:-8080}"
url="http://127.0.0.1:$dash_port"

die() { echo "local-cluster: $*" >&2; exit 2; }

running() { [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

client_env() {  # what a client needs; a Ray 2.59+ Jobs client sends the token only with RAY_AUTH_MODE=token
  printf 'export RAY_ADDRESS=%q RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=%q RAY_USAGE_STATS_ENABLED=0\n' "$url" "$dir/token"
}

up() {
  running && die "already up (pid $(cat "$dir/pid")); \`$0 down\` first"
  "$py" -c 'import ray, landscape, jobs' 2>/dev/null \
    || die "$py cannot import ray and landscape: install the project there (pip install -e .) or set LANDSCAPE_PYTHON"
  mkdir -p "$dir"
  chmod 700 "$dir"
  [[ -s "$dir/token" ]] || (umask 077 && "$py" -c 'import secrets; print(secrets.token_hex(32))' > "$dir/token")
  client_env > "$dir/env"
  local cpus=()
  [[ -n "${LANDSCAPE_NUM_CPUS:-}" ]] && cpus=(--num-cpus="$LANDSCAPE_NUM_CPUS")
  # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: Ray's single-machine mode. Without it Ray 2.60 listens on
  # all interfaces and advertises the machine's outward address even with --node-ip-address=127.0.0.1.
  # PATH: a job's entrypoint runs `python`; make it the one that has landscape.
  # A session of its own (setsid) so that `down` ends exactly this cluster, never another Ray here.
  # shellcheck disable=SC2086
  env RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token \
      RAY_AUTH_TOKEN_PATH="$dir/token" PATH="$bin:$PATH" \
    setsid "$py" -c 'from ray.scripts.scripts import main; main()' start --head --block --disable-usage-stats \
      --node-ip-address=127.0.0.1 --port="$gcs_port" \
      --dashboard-host=127.0.0.1 --dashboard-port="$dash_port" --metrics-export-port="$metrics_port" \
      --temp-dir="$dir/ray" "${cpus[@]}" ${LANDSCAPE_RAY_START_ARGS:-} \
      > "$dir/ray.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  for _ in $(seq 1 240); do
    running || { tail -n 30 "$dir/ray.log" >&2; rm -f "$dir/pid"; die "ray start failed (log above, all of it in $dir/ray.log)"; }
    if "$py" - "$url" "$dir/token" <<'EOF' 2>/dev/null; then
import sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/api/jobs/", headers={"Authorization": "Bearer " + open(sys.argv[2]).read().strip()})
urllib.request.urlopen(req, timeout=2).read()
EOF
      echo "local-cluster: up; dashboard $url, metrics on 127.0.0.1:$metrics_port, python $py"
      echo "local-cluster: in each shell that submits, run:  source $dir/env"
      cat "$dir/env"
      return 0
    fi
    sleep 0.5
  done
  down >/dev/null 2>&1 || true
  die "the dashboard did not answer at $url within 120 s (log: $dir/ray.log)"
}

status() {
  if ! running; then echo "local-cluster: down"; return 3; fi
  echo "local-cluster: up (pid $(cat "$dir/pid")); dashboard $url; state in $dir"
  (source "$dir/env" && "$py" -m jobs.cli list) || true
}

down() {
  if ! running; then rm -f "$dir/pid"; echo "local-cluster: not running"; return 0; fi
  # Stop jobs still running: Ray starts each driver in a session of its own, outside ours.
  "$py" - "$url" "$dir/token" <<'EOF' || true
import json, sys, time, urllib.request
url, token = sys.argv[1], open(sys.argv[2]).read().strip()
def api(path, method="GET"):
    req = urllib.request.Request(url + path, method=method, headers={"Authorization": "Bearer " + token})
    return json.loads(urllib.request.urlopen(req, timeout=5).read())
live = lambda: [j for j in api("/api/jobs/") if j["status"] not in ("SUCCEEDED", "FAILED", "STOPPED")]
try:
    for j in live():
        api(f"/api/jobs/{j['submission_id']}/stop", method="POST")
    deadline = time.monotonic() + 20
    while live() and time.monotonic() < deadline:
        time.sleep(0.3)
except OSError:  # the dashboard is gone already: nothing left to stop through it
    pass
EOF
  local pid; pid="$(cat "$dir/pid")"
  kill -TERM "$pid" 2>/dev/null || true  # `ray start --block` stops its node on SIGTERM
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  # What is left of its session (some Ray processes take a process group of their own).
  for _ in $(seq 1 20); do
    local left; left="$(ps -eo pid=,sid= | awk -v s="$pid" '$2 == s {print $1}')"
    [[ -z "$left" ]] && break
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.25
  done
  rm -f "$dir/pid"
  echo "local-cluster: down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) client_env ;;
  *) echo "usage: $0 up|status|down|env" >&2; exit 2 ;;
esac
