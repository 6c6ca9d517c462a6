#!/usr/bin/env bash
# Conveyor next to Sidekiq 6.4 on one private Redis, alternating runs (A B A B …) so both see the same machine state,
# then a table of medians and ratios (Conveyor / Sidekiq).
#
#   Benchmarks/side-by-side.sh [--pairs N=3] [--jobs N=50000] [--concurrency C=50] [--rate R=500] [--seconds S=10]
#                              [--no-drain] [--no-steady] [--build]
#
# Drain: `conveyor-bench cost --mode drain` against $SIDEKIQ_PEER/drain.sh (default: <repo>/../shared/peers/sidekiq);
# both bulk-fill N no-op jobs (1000 per call) and drain them with one worker process at concurrency C.
# Steady: `conveyor-bench cost --mode steady` against Benchmarks/sidekiq/steady.rb; both enqueue R jobs/s one at a
# time into one worker at concurrency 10 and measure S seconds after a 1 s warm-up.
# Redis CPU is the server's own (INFO used_cpu_user + used_cpu_sys; drain.sh reads /proc/PID/stat ticks).
# Installs ruby-sidekiq with apt-get when `sidekiq` is missing. Builds conveyor-bench (release, under the shared
# build lock) when it is missing or with --build. The redis-server it starts is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
peer=${SIDEKIQ_PEER:-"$repo/../shared/peers/sidekiq"}
bench="$repo/.build/release/conveyor-bench"
pairs=3 jobs=50000 concurrency=50 rate=500 seconds=10 drain=1 steady=1 build=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) pairs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --no-drain) drain=0; shift ;;
    --no-steady) steady=0; shift ;;
    --build) build=1; shift ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "side-by-side.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v sidekiq >/dev/null; then
  echo "installing ruby-sidekiq (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y ruby-sidekiq >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y ruby-sidekiq >/dev/null; }
fi
[ -x "$peer/drain.sh" ] || [ "$drain" = 0 ] || { echo "side-by-side.sh: no $peer/drain.sh (set SIDEKIQ_PEER)" >&2; exit 2; }
if [ "$build" = 1 ] || [ ! -x "$bench" ]; then
  (cd "$repo" && flock -o /tmp/conveyor-build.lock swift build -c release --product conveyor-bench)
fi

# A private throwaway server on a free loopback port.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$port" ping >/dev/null || { echo "side-by-side.sh: redis-server did not start: $(cat "$work/redis.log")" >&2; exit 1; }
url="redis://127.0.0.1:$port/0"
echo "Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port (pid $redis_pid); $pairs pairs" >&2

# Runs a command, shows its output on stderr, appends its last JSON line to a file.
run() {
  local out=$1; shift
  echo "+ $*" >&2
  local text
  text=$("$@") || { echo "side-by-side.sh: failed: $*" >&2; echo "$text" >&2; exit 1; }
  echo "$text" | sed 's/^/    /' >&2
  echo "$text" | grep '^{' | tail -n 1 >>"$out"
}

for pair in $(seq "$pairs"); do
  if [ "$drain" = 1 ]; then
    echo "== drain pair $pair/$pairs" >&2
    run "$work/conveyor-drain" "$bench" cost --mode drain --redis "$url" --jobs "$jobs" --concurrency "$concurrency"
    run "$work/sidekiq-drain" "$peer/drain.sh" "$port" "$jobs" "$concurrency"
  fi
  if [ "$steady" = 1 ]; then
    echo "== steady pair $pair/$pairs" >&2
    run "$work/conveyor-steady" "$bench" cost --mode steady --redis "$url" --rate "$rate" --seconds "$seconds"
    run "$work/sidekiq-steady" env REDIS_URL="$url" ruby "$repo/Benchmarks/sidekiq/steady.rb" "$rate" "$seconds" 10
  fi
done

python3 - "$work" <<'PY'
import json, os, statistics, sys

work = sys.argv[1]

def load(name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]

def fill_drain(run):
    return run["redis_cpu_us_per_job_fill"] + run["redis_cpu_us_per_job_drain"]

rows = []  # (section, label, conveyor values, sidekiq values)
cd, sd = load("conveyor-drain"), load("sidekiq-drain")
if cd and sd:
    rows += [
        ("drain", "drain jobs/s", [r["jobs_per_second"] for r in cd], [r["drain_jobs_per_s"] for r in sd]),
        ("drain", "fill jobs/s (bulk enqueue)", [r["fill_jobs_per_second"] for r in cd],
         [r["fill_jobs_per_s"] for r in sd]),
        ("drain", "Redis CPU µs/job, fill", [r["fill_redis_cpu_us_per_job"] for r in cd],
         [r["redis_cpu_us_per_job_fill"] for r in sd]),
        ("drain", "Redis CPU µs/job, drain", [r["redis_cpu_us_per_job"] for r in cd],
         [r["redis_cpu_us_per_job_drain"] for r in sd]),
        ("drain", "Redis CPU µs/job, fill+drain", [r["fill_drain_redis_cpu_us_per_job"] for r in cd],
         [fill_drain(r) for r in sd]),
    ]
cs, ss = load("conveyor-steady"), load("sidekiq-steady")
if cs and ss:
    rows += [
        ("steady", "jobs/s", [r["jobs_per_second"] for r in cs], [r["jobs_per_second"] for r in ss]),
        ("steady", "Redis CPU µs/job (idle gaps included)", [r["redis_cpu_us_per_job"] for r in cs],
         [r["redis_cpu_us_per_job"] for r in ss]),
        ("steady", "Redis commands/job", [r["commands_per_job"] for r in cs], [r["commands_per_job"] for r in ss]),
        ("steady", "worker CPU s per 10k jobs", [r["worker_cpu_s_per_10k_jobs"] for r in cs],
         [r["worker_cpu_s_per_10k_jobs"] for r in ss]),
        ("steady", "enqueue→start p50 ms", [r["p50_ms"] for r in cs], [r["p50_ms"] for r in ss]),
        ("steady", "enqueue→start p99 ms", [r["p99_ms"] for r in cs], [r["p99_ms"] for r in ss]),
    ]
if not rows:
    sys.exit("side-by-side.sh: no results")

def show(value):
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"

print(f"{'':6} {'figure (median of runs)':40} {'Conveyor':>10} {'Sidekiq':>10} {'C/S':>6}   runs C | runs S")
summary = {}
for section, label, conveyor, sidekiq in rows:
    c, s = statistics.median(conveyor), statistics.median(sidekiq)
    # drain.sh reads /proc ticks (10 ms): a short fill can read 0.
    ratio = c / s if s else None
    runs = " ".join(show(v) for v in conveyor) + " | " + " ".join(show(v) for v in sidekiq)
    shown = f"{ratio:6.2f}" if ratio is not None else f"{'—':>6}"
    print(f"{section:6} {label:40} {show(c):>10} {show(s):>10} {shown}   {runs}")
    summary[f"{section}: {label}"] = {"conveyor": c, "sidekiq": s, "ratio": None if ratio is None else round(ratio, 3)}
if cd:
    extra = {k: statistics.median(r[k] for r in cd) for k in
             ("commands_per_job", "fcalls_per_job", "fill_commands_per_job", "worker_cpu_s_per_10k_jobs")}
    print("Conveyor drain, medians: " + ", ".join(f"{k} {v:g}" for k, v in extra.items()))
if cs:
    print(f"Conveyor steady, medians: fcalls_per_job {statistics.median(r['fcalls_per_job'] for r in cs):g}")
print(json.dumps({"side_by_side": summary, "pairs": max(len(cd), len(cs))}, ensure_ascii=False))
PY
