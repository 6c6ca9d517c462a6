#!/bin/sh
# Cross-language test with nothing but redis-cli: enqueues jobs that a Swift `conveyor worker` runs, then reads their
# status and results back, as lua/README.md shows.
# Usage: redis_cli_producer.sh PORT LUA_FOLDER QUEUE   (prints "ok" and exits 0 when every check holds)
set -eu
port=$1 lua=$2 q=$3
p="conveyor:{$q}"
cli() { redis-cli -p "$port" --raw "$@"; }
fail() { echo "redis_cli_producer: $*" >&2; exit 1; }

loaded=$(cat "$lua/library.lua" "$lua"/functions/*.lua | redis-cli -p "$port" -x FUNCTION LOAD REPLACE)
[ "$loaded" = conveyor_2 ] || fail "FUNCTION LOAD answered $loaded"

reply=$(cli FCALL conveyor_enqueue 1 "$p" cli-echo echo '{"from":"redis-cli"}' | tr '\n' ' ')
[ "$reply" = "created $q/cli-echo pending " ] || fail "enqueue answered: $reply"
# Registered once a job is stored, so a refused first enqueue leaves no bad name in the registry.
cli SADD conveyor:queues "$q" >/dev/null
reply=$(cli FCALL conveyor_enqueue 1 "$p" cli-later sleep '{"ms":5}' delay_ms 1000 \
    reference_type order reference_id 7 max_retries 2 | tr '\n' ' ')
[ "$reply" = "created $q/cli-later scheduled " ] || fail "delayed enqueue answered: $reply"
cli FCALL conveyor_enqueue 1 "$p" cli-fail fail '{}' max_retries 0 >/dev/null
reply=$(cli FCALL conveyor_enqueue 1 "$p" cli-echo echo '{}' | head -1)
[ "$reply" = exists ] || fail "enqueuing an id again answered: $reply"

# Bad input: an INVALID error naming the problem; nothing is stored.
reply=$(cli FCALL conveyor_enqueue 1 "$p" cli-bad echo '{oops' 2>&1 || true)
case $reply in *INVALID*"not valid JSON"*) ;; *) fail "bad JSON answered: $reply" ;; esac
[ "$(cli EXISTS "$p:job:cli-bad")" = 0 ] || fail "a refused job was stored"

# Wait for the worker.
i=0
while :; do
    s1=$(cli HGET "$p:job:cli-echo" status) s2=$(cli HGET "$p:job:cli-later" status) s3=$(cli HGET "$p:job:cli-fail" status)
    [ "$s1 $s2 $s3" = "completed completed failed" ] && break
    i=$((i + 1))
    [ $i -lt 600 ] || fail "jobs did not finish: $s1 $s2 $s3"
    sleep 0.1
done

[ "$(cli HGET "$p:job:cli-echo" result)" = '{"from":"redis-cli"}' ] || fail "echo result: $(cli HGET "$p:job:cli-echo" result)"
started=$(cli HGET "$p:job:cli-later" started_at) created=$(cli HGET "$p:job:cli-later" created_at)
[ "$started" -ge $((created + 1000)) ] || fail "the delayed job started early ($started < $created + 1000)"
case $(cli HGET "$p:job:cli-fail" error) in *"failing on purpose"*) ;; *) fail "fail error: $(cli HGET "$p:job:cli-fail" error)" ;; esac
[ "$(cli ZRANGE "$p:completed" 0 -1 | sort | tr '\n' ' ')" = "cli-echo cli-later " ] || fail "completed list"
[ "$(cli ZRANGE "$p:failed" 0 -1)" = cli-fail ] || fail "failed list"
[ "$(cli SMEMBERS "$p:ref:order:7")" = "$q/cli-later" ] || fail "reference set"
echo ok
