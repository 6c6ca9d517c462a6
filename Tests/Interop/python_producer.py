#!/usr/bin/python3
"""Cross-language test: a Python producer (redis-py) enqueues jobs that a Swift `conveyor worker` runs, then reads
their status and results back. It only calls the functions in lua/ and reads keys, as lua/README.md shows.

Usage: python_producer.py REDIS_URL LUA_FOLDER QUEUE
Prints a JSON summary and exits 0 when every check holds; an AssertionError (exit 1) says which did not.
"""
import glob
import json
import os
import sys
import time
import uuid

import redis

url, lua, queue = sys.argv[1], sys.argv[2], sys.argv[3]
r = redis.Redis.from_url(url, decode_responses=True)
NS = "conveyor"
P = f"{NS}:{{{queue}}}"

# Load (or replace) the library exactly as lua/README.md says: library.lua, then functions/*.lua in name order.
source = open(os.path.join(lua, "library.lua")).read()
source += "".join(open(path).read() for path in sorted(glob.glob(os.path.join(lua, "functions", "*.lua"))))
assert r.function_load(source, replace=True) == "conveyor_2"


def uuid7():
    b = bytearray((time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10))
    b[6] = (b[6] & 0x0F) | 0x70
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def enqueue(job_type, payload, job_id=None, **options):
    args = [job_id or uuid7(), job_type, json.dumps(payload)]
    for name, value in options.items():
        args += [name, str(value)]
    reply = r.fcall("conveyor_enqueue", 1, P, *args)  # raises on a refused job: nothing to register then
    r.sadd(f"{NS}:queues", queue)
    return reply


def get(full_id):
    q, local_id = full_id.split("/", 1)
    return r.hgetall(f"{NS}:{{{q}}}:job:{local_id}") or None


# Immediate, delayed, with a reference and retries, one that keeps failing.
outcome, echo_id, status = enqueue("echo", {"from": "python", "n": 1}, job_id="py-echo")
assert (outcome, echo_id, status) == ("created", f"{queue}/py-echo", "pending"), (outcome, echo_id, status)
_, delayed_id, status = enqueue("sleep", {"ms": 10}, delay_ms=1500)
assert status == "scheduled", status
_, referenced_id, _ = enqueue("echo", {"upload": 42}, reference_type="file_upload", reference_id="42", max_retries=5)
_, failing_id, _ = enqueue("fail", {}, max_retries=1)

# Enqueuing the same id again stores nothing new.
assert enqueue("echo", {"other": True}, job_id="py-echo")[0] == "exists"

# Any JSON value is a payload, a string too.
assert enqueue("echo", "just a string", job_id="py-string")[0] == "created"

# Bad input: a clear INVALID error, and nothing is stored.
try:
    r.fcall("conveyor_enqueue", 1, P, "py-broken", "echo", "{not json")
    raise AssertionError("invalid JSON was accepted")
except redis.ResponseError as error:
    assert str(error).startswith("INVALID"), str(error)
assert get(f"{queue}/py-broken") is None

# Wait until the Swift worker has finished every job.
ids = [echo_id, delayed_id, referenced_id, failing_id, f"{queue}/py-string"]
deadline = time.time() + 60
while time.time() < deadline:
    statuses = {i: get(i)["status"] for i in ids}
    if all(s in ("completed", "failed", "cancelled") for s in statuses.values()):
        break
    time.sleep(0.1)
else:
    raise AssertionError(f"jobs did not finish: {statuses}")

echo = get(echo_id)
assert echo["status"] == "completed", echo
assert json.loads(echo["result"]) == {"from": "python", "n": 1}, echo["result"]
assert echo["worker"], echo

delayed = get(delayed_id)
assert delayed["status"] == "completed", delayed
assert int(delayed["started_at"]) >= int(delayed["created_at"]) + 1500, delayed
assert json.loads(delayed["result"])["slept_ms"] == 10, delayed["result"]

referenced = get(referenced_id)
assert referenced["status"] == "completed" and referenced["max_retries"] == "5", referenced
assert r.smembers(f"{P}:ref:file_upload:42") == {referenced_id}

failing = get(failing_id)
assert failing["status"] == "failed", failing
assert failing["attempts"] == "2" and failing["retry_count"] == "1", failing
assert "failing on purpose" in failing["error"], failing["error"]

# List the queue by status, as lua/README.md shows.
completed = r.zrange(f"{P}:completed", 0, -1)
failed = r.zrange(f"{P}:failed", 0, -1)
assert set(completed) == {"py-echo", delayed_id.split("/", 1)[1], referenced_id.split("/", 1)[1], "py-string"}, completed
assert failed == [failing_id.split("/", 1)[1]], failed

print(json.dumps({"completed": len(completed), "failed": len(failed), "echo_result": json.loads(echo["result"])}))
