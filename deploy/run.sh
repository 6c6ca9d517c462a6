#!/usr/bin/env bash
# The README's run command: installs what is missing, builds, and runs Conveyor's demo — against $REDIS_URL when
# it is set, else against a private redis-server that the demo starts on a free loopback port and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
swift build -c release --product conveyor 2>&1 | grep -v "prohibited flag" || true
test -x .build/release/conveyor
exec .build/release/conveyor demo "$@"
