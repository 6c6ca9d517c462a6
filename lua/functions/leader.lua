-- Leader election for the recurring-job scheduler. One global hash, whose name the caller gives:
--   <namespace>:leader   token, node, info (JSON: host, pid, …), since, expires_at (epoch ms), epoch
-- The lease is the hash's expires_at compared with Redis TIME (not a key TTL), so the epoch survives leaders and
-- only grows. Correctness of firing does not rest on this election (see conveyor_schedule_fire); it only keeps
-- the work on one node.

-- conveyor_leader_acquire: takes the lease when it is free or expired, or renews it for its holder.
--
-- KEYS[1]  the leader hash, <namespace>:leader
-- ARGV[1]  the caller's token (unique per process)
-- ARGV[2]  lease length in ms
-- ARGV[3]  node id
-- ARGV[4]  info (JSON) shown to operators
-- Reply    {1, epoch} when the caller holds the lease now; {0, epoch, node, expires_at} otherwise
redis.register_function('conveyor_leader_acquire', guarded(function(keys, argv)
    local leader = keys[1]
    local token = argv[1]
    if type(token) ~= 'string' or #token == 0 then raise('INVALID', 'the token is empty') end
    local lease_ms = parse_int('lease_ms', argv[2], 100, 3600000)
    local node = argv[3] or ''
    local info = argv[4] or '{}'
    if not is_json(info) then raise('INVALID', 'the info is not valid JSON') end
    local now = now_ms()
    local current = redis.call('HMGET', leader, 'token', 'expires_at', 'epoch', 'node')
    local epoch = tonumber(current[3]) or 0
    local expires_at = tonumber(current[2]) or 0
    if current[1] == token and expires_at >= now then
        redis.call('HSET', leader, 'expires_at', str(now + lease_ms))
        return {1, epoch}
    end
    if current[1] and current[1] ~= token and expires_at >= now then
        return {0, epoch, current[4] or '', expires_at}
    end
    epoch = epoch + 1
    redis.call('HSET', leader, 'token', token, 'node', node, 'info', info, 'since', str(now),
        'expires_at', str(now + lease_ms), 'epoch', str(epoch))
    return {1, epoch}
end))

-- conveyor_leader_release: gives the lease up, if the caller holds it.
--
-- KEYS[1]  the leader hash
-- ARGV[1]  the caller's token
-- Reply    1 when released, 0 when the caller did not hold it
redis.register_function('conveyor_leader_release', guarded(function(keys, argv)
    local leader = keys[1]
    if redis.call('HGET', leader, 'token') ~= argv[1] then return 0 end
    -- The hash names no node once released (the epoch stays: it only grows).
    redis.call('HDEL', leader, 'token', 'node', 'info', 'since')
    redis.call('HSET', leader, 'expires_at', '0')
    return 1
end))
