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
timeout -k 10 1500 swift test --skip-build 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# No test may leave a redis-server or a worker process behind.
sleep 1
leftovers=$(pgrep -af "redis-server 127.0.0.1:|conveyor worker --redis redis://127.0.0.1:" | grep -v ":6379" || true)
if [ -n "$leftovers" ]; then
    echo "test: processes left running by the tests:" >&2
    echo "$leftovers" >&2
    exit 1
fi
exit "$status"
