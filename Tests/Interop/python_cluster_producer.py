"""A Python producer on a Redis Cluster (redis-py's RedisCluster): the recipe of lua/README.md's "Redis Cluster:
finding the node", run by ClusterTests against a real cluster and a Swift worker.

    python3 python_cluster_producer.py HOST PORT LUA_DIR QUEUE [QUEUE...]

Loads the library on every primary, checks its version on each, enqueues two jobs per queue (the queues' slots lie on
different primaries), waits until the Swift worker completed them all, and prints a JSON summary.
"""
import json
import os
import sys
import time

from redis.cluster import RedisCluster

host, port, lua, queues = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
r = RedisCluster(host=host, port=port, decode_responses=True)

code = open(os.path.join(lua, "library.lua")).read()
for name in sorted(os.listdir(os.path.join(lua, "functions"))):
    code += open(os.path.join(lua, "functions", name)).read()
loaded = r.execute_command("FUNCTION", "LOAD", "REPLACE", code, target_nodes=RedisCluster.PRIMARIES)
versions = r.execute_command("FCALL", "conveyor_version", 0, target_nodes=RedisCluster.PRIMARIES)

ids = []
for queue in queues:
    prefix = f"conveyor:{{{queue}}}"
    for n in range(2):
        outcome, full_id, status = r.fcall("conveyor_enqueue", 1, prefix, f"py-{n}", "echo", json.dumps({"n": n}))
        r.sadd("conveyor:queues", queue)
        ids.append(full_id)

deadline = time.time() + 60
def status(full_id):
    queue, local_id = full_id.split("/", 1)
    return r.hget(f"conveyor:{{{queue}}}:job:{local_id}", "status")
while time.time() < deadline and any(status(i) != "completed" for i in ids):
    time.sleep(0.1)

print(json.dumps({
    "primaries": len(loaded),
    "versions": sorted(set(versions.values())),
    "completed": sum(status(i) == "completed" for i in ids),
    "jobs": len(ids),
}))
