#!/usr/bin/env bash
# Conveyor on a 3-primary Redis Cluster next to Conveyor on one Redis, alternating runs (single, cluster, single, …),
# then medians and ratios (cluster / single).
#
#   Benchmarks/cluster-vs-single.sh [--pairs N=3] [--jobs N=30000] [--workers W=3] [--concurrency C=10] [--build]
#
# Each run: FLUSHALL, `conveyor install`, `conveyor enqueue-many` of N `echo` jobs over 6 queues (two on each
# primary of the cluster), then W `conveyor worker` processes (release build, --example-handlers) drain them; the
# drain ends when every queue's `completed` counter reaches its share. Redis CPU is each redis-server's own
# utime + stime from /proc/PID/stat over the drain, per job drained, quoted per shard and in total. The cluster has no
# replicas here (neither has the single server), so both pay the same per-command cost. Every server it starts is
# stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
conveyor="$repo/.build/release/conveyor"
pairs=3 jobs=30000 workers=3 concurrency=10 build=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --build) build=1; shift ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cluster-vs-single.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$build" = 1 ] || [ ! -x "$conveyor" ]; then
  (cd "$repo" && flock -o /tmp/conveyor-build.lock swift build -c release --product conveyor)
fi

# A free port at most 55535: a cluster node also listens on its port + 10000 (the cluster bus).
free_port() {
  python3 -c '
import random, socket
while True:
    port = random.randint(20000, 55535)
    try:
        for p in (port, port + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", p)); s.close()
        print(port); break
    except OSError: pass'
}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_server() { # port [cluster]
  local port=$1 dir="$work/$1"
  mkdir -p "$dir"
  local extra=()
  [ "${2:-}" = cluster ] && extra=(--cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 5000)
  (cd "$dir" && exec redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no "${extra[@]}" \
    >"$dir/log" 2>&1) &
  pids+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "redis-server on $port did not start: $(tail -5 "$dir/log")" >&2
  exit 1
}
server_pid() { redis-cli -p "$1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

single_port=$(free_port)
start_server "$single_port"
cluster_ports=()
for _ in 1 2 3; do
  port=$(free_port)
  start_server "$port" cluster
  cluster_ports+=("$port")
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${cluster_ports[@]}") --cluster-yes >/dev/null
for _ in $(seq 200); do
  redis-cli -p "${cluster_ports[0]}" cluster info | grep -q 'cluster_state:ok' && break
  sleep 0.1
done
sleep 1

# Six queues, two on each primary.
queues=()
declare -A per_node=()
for index in $(seq 1 200); do
  name="bench$index"
  slot=$(redis-cli -p "${cluster_ports[0]}" cluster keyslot "conveyor:{$name}")
  owner=$(redis-cli -p "${cluster_ports[0]}" cluster nodes | python3 -c "
import sys
for line in sys.stdin:
    fields = line.split()
    if 'master' not in fields[2]: continue
    for part in fields[8:]:
        low, _, high = part.partition('-')
        if low.isdigit() and int(low) <= $slot <= int(high or low): print(fields[1].split('@')[0].split(':')[1])
")
  if [ "${per_node[$owner]:-0}" -lt 2 ]; then
    per_node[$owner]=$(( ${per_node[$owner]:-0} + 1 ))
    queues+=("$name")
  fi
  [ "${#queues[@]}" -ge 6 ] && break
done
[ "${#queues[@]}" -eq 6 ] || { echo "could not place six queues on three primaries" >&2; exit 1; }
python3 -c "
import json, sys
queues = sys.argv[2].split(',')
for i in range(int(sys.argv[1])):
    print(json.dumps({'type': 'echo', 'queue': queues[i % len(queues)], 'payload': {'n': i}}))
" "$jobs" "$(IFS=,; echo "${queues[*]}")" >"$work/jobs.jsonl"
echo "single: 127.0.0.1:$single_port; cluster: ${cluster_ports[*]}; queues ${queues[*]}; $jobs jobs, $workers workers ×$concurrency" >&2

# run KIND → prints "jobs_per_s total_us_per_job shard_us_per_job..."
run() {
  local kind=$1 url ports
  if [ "$kind" = single ]; then
    url="redis://127.0.0.1:$single_port"; ports=("$single_port")
  else
    url="redis+cluster://127.0.0.1:${cluster_ports[0]},127.0.0.1:${cluster_ports[1]}"; ports=("${cluster_ports[@]}")
  fi
  for port in "${ports[@]}"; do redis-cli -p "$port" flushall >/dev/null; done
  "$conveyor" install --redis "$url" >/dev/null
  "$conveyor" enqueue-many --redis "$url" --file "$work/jobs.jsonl" >/dev/null
  local before=() server_pids=()
  for port in "${ports[@]}"; do
    local pid; pid=$(server_pid "$port"); server_pids+=("$pid"); before+=("$(cpu_ticks "$pid")")
  done
  local started; started=$(date +%s%N)
  local worker_pids=() queue_args=()
  for name in "${queues[@]}"; do queue_args+=(--queue "$name"); done
  for _ in $(seq "$workers"); do
    "$conveyor" worker --redis "$url" --example-handlers --concurrency "$concurrency" --no-scheduler "${queue_args[@]}" \
      >"$work/worker.log" 2>&1 &
    worker_pids+=($!)
  done
  local flag=""; [ "$kind" = cluster ] && flag="-c"
  while true; do
    local done=0
    for name in "${queues[@]}"; do
      count=$(redis-cli $flag -p "${ports[0]}" hget "conveyor:{$name}:stats" completed)
      done=$((done + ${count:-0}))
    done
    [ "$done" -ge "$jobs" ] && break
    sleep 0.1
  done
  local ended; ended=$(date +%s%N)
  local after=()
  for pid in "${server_pids[@]}"; do after+=("$(cpu_ticks "$pid")"); done
  for pid in "${worker_pids[@]}"; do kill -TERM "$pid"; done
  for pid in "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  local hz; hz=$(getconf CLK_TCK)
  python3 -c "
import sys
jobs, start, end, hz = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
before = [int(x) for x in sys.argv[5].split()]
after = [int(x) for x in sys.argv[6].split()]
shards = [(a - b) / hz * 1e6 / jobs for a, b in zip(after, before)]
print('%.0f %.1f %s' % (jobs / ((end - start) / 1e9), sum(shards), ' '.join('%.1f' % s for s in shards)))
" "$jobs" "$started" "$ended" "$hz" "${before[*]}" "${after[*]}"
}

results_single=() results_cluster=()
for pair in $(seq "$pairs"); do
  line=$(run single); echo "pair $pair single:  jobs/s, Redis µs/job: $line" >&2; results_single+=("$line")
  line=$(run cluster); echo "pair $pair cluster: jobs/s, Redis µs/job total, per shard: $line" >&2; results_cluster+=("$line")
done
python3 - "$(printf '%s;' "${results_single[@]}")" "$(printf '%s;' "${results_cluster[@]}")" <<'EOF'
import statistics, sys
single = [list(map(float, r.split())) for r in sys.argv[1].split(';') if r]
cluster = [list(map(float, r.split())) for r in sys.argv[2].split(';') if r]
def median(rows, i): return statistics.median(r[i] for r in rows)
print('| | one Redis | 3-primary cluster | ratio |')
print('| --- | --- | --- | --- |')
print('| drain (jobs/s), median | %.0f | %.0f | %.2f× |' % (median(single, 0), median(cluster, 0), median(cluster, 0) / median(single, 0)))
print('| Redis CPU per job, all servers (µs) | %.1f | %.1f | %.2f× |' % (median(single, 1), median(cluster, 1), median(cluster, 1) / median(single, 1)))
shards = ' / '.join('%.1f' % median(cluster, 2 + i) for i in range(len(cluster[0]) - 2))
print('| Redis CPU per job drained, per shard (µs) | – | %s | |' % shards)
EOF
