#!/usr/bin/env bash
# The README's test command: installs what is missing, checks formatting, builds with no warnings of our own, and
# runs every test (each test starts and stops its own redis-server on a free loopback port).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh

echo "== swift format lint"
swift format lint --strict --recursive Package.swift Sources Tests Benchmarks

echo "== build"
log=$(mktemp)
swift build --build-tests 2>&1 | tee "$log"
# Warnings in our own files fail the build (SwiftPM's note about pkg-config's -D_FILE_OFFSET_BITS is not ours).
if grep -E "^$PWD/(Sources|Tests|Benchmarks)/.*warning:" "$log"; then
    echo "test: the build has warnings in our code (above); fix them" >&2
    exit 1
fi

echo "== tests"
# Swift Testing runs every test at once by default; on 2 cores that starves the timing-sensitive ones (a lease, a
# heartbeat, a fire time). Six at a time keeps the run about as short and the results steady.
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-6}
# The tests run in a session of their own, so what they leave behind is told apart from any other redis-server or
# worker on the machine (a conveyor dev in another terminal, say).
# The Redis Cluster suites (six servers and three busy worker processes each) run after the rest, one test at a time,
# so their load neither starves the timing-sensitive tests nor stretches a measured shard failover. The image's build
# steps (ImageBuildTests: a whole build from nothing, both cores busy for minutes) run last, alone.
session_file=$(mktemp)
timeout -k 10 2100 setsid --wait bash -c '
    echo $$ > "$0"
    swift test --skip-build --skip "Cluster|ImageBuild"; rest=$?
    SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=1 swift test --skip-build --filter Cluster; cluster=$?
    swift test --skip-build --filter ImageBuild; image=$?
    [ "$rest" = 0 ] && [ "$cluster" = 0 ] && [ "$image" = 0 ]' "$session_file" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
session=$(cat "$session_file")

# No test may leave a redis-server, a worker or a handler process behind. A process that has exited but whose
# parent had not reaped it yet (a zombie, "<defunct>": it runs nothing and holds no port) is not one; once its parent
# is gone, init reaps it, so look again for a few seconds before failing.
leftovers=""
for _ in 1 2 3 4 5; do
    sleep 1
    leftovers=$(ps -o pid=,stat=,args= -s "$session" | awk '$2 !~ /^Z/' || true)
    [ -z "$leftovers" ] && break
done
if [ -n "$leftovers" ]; then
    echo "test: processes left running by the tests:" >&2
    echo "$leftovers" >&2
    exit 1
fi
exit "$status"
