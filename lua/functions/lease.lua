-- conveyor_heartbeat: extends the leases a worker holds, and tells it which it lost and which to cancel.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  new lease length in ms, from now
-- ARGV[2…] job id, lease token, job id, lease token, …
-- Reply    one status per job: "ok" (extended), "cancel" (extended; a cancel was requested: stop the handler and
--          report with conveyor_fail), "lost" (the lease is gone: another worker or a reclaim took the job; do not
--          write a result)
-- Flags    allow-oom: a worker must keep its leases while Redis is at maxmemory (noeviction) and refuses its
--          completions, so that the completion it retries succeeds once memory is freed (it only updates scores).
redis.register_function{function_name = 'conveyor_heartbeat', callback = guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local lease_ms = parse_int('lease_ms', argv[1], 1, 86400000)
    if (#argv - 1) % 2 ~= 0 then
        raise('INVALID', 'expected job id and lease token pairs after the lease length')
    end
    local now = now_ms()
    local replies = {}
    for index = 2, #argv, 2 do
        -- One bad id is that entry's problem ("lost"), never every other lease's in the same call.
        local valid, id = pcall(local_id, queue, argv[index])
        local job = valid and redis.call('HMGET', job_key(prefix, id), 'status', 'lease', 'cancel_requested') or {}
        if valid and job[1] == 'processing' and job[2] == argv[index + 1] then
            redis.call('ZADD', key(prefix, 'active'), 'XX', str(now + lease_ms), id)
            table.insert(replies, job[3] == '1' and 'cancel' or 'ok')
        else
            table.insert(replies, 'lost')
        end
    end
    return replies
end), flags = {'allow-oom'}}

-- conveyor_reclaim: returns jobs whose lease expired (their worker died or stalled) to pending.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  how many expired leases to handle at most (1…10000)
-- ARGV[2]  how many lease expiries a job may have before it fails (default 3)
-- Reply    {handled, next_expiry_ms, trimmed}: how many jobs were handled, when the next lease expires (-1 if
--          none), and how many finished jobs retention deleted. Each handled job goes back to the front of pending
--          (error says which worker lost it), or to failed after too many expiries, or to cancelled when a cancel
--          was requested. Then retention is applied as conveyor_trim does (at most 1000 jobs per status).
redis.register_function('conveyor_reclaim', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local limit = parse_int('limit', argv[1], 1, 10000)
    local max_stalls = argv[2] and parse_int('max stalls', argv[2], 0, 1000) or 3
    local now = now_ms()
    local active = key(prefix, 'active')
    local expired = redis.call('ZRANGEBYSCORE', active, '-inf', '(' .. str(now), 'LIMIT', 0, limit)
    local requeued = 0
    for _, id in ipairs(expired) do
        local job = load_job(prefix, id)
        if not job or job.status ~= 'processing' then
            redis.call('ZREM', active, id)
        else
            local stalls = (tonumber(job.stalls) or 0) + 1
            local message = 'lease expired while worker "' .. tostring(job.worker) .. '" held the job (stall '
                .. stalls .. ' of at most ' .. max_stalls .. ')'
            redis.call('HSET', job_key(prefix, id), 'stalls', str(stalls))
            count(prefix, 'stalled', 1, now)
            if job.cancel_requested == '1' then
                finish(prefix, queue, id, job, 'cancelled', now, {error = 'cancelled; ' .. message})
            elseif stalls > max_stalls then
                finish(prefix, queue, id, job, 'failed', now, {error = message})
            else
                redis.call('ZREM', active, id)
                redis.call('HSET', job_key(prefix, id), 'status', 'pending', 'error', message, 'updated_at', str(now))
                redis.call('HDEL', job_key(prefix, id), 'lease')
                make_pending(prefix, id, job.priority, true, job.type, now)
                requeued = requeued + 1
                emit(prefix, full_id(queue, id), job.type, 'processing', 'pending', now, message)
            end
        end
    end
    wake(prefix, requeued)
    local trimmed = 0
    for status in pairs(FINISHED) do
        trimmed = trimmed + trim_finished(prefix, queue, status, now, TRIM_BATCH)
    end
    local first = redis.call('ZRANGE', active, 0, 0, 'WITHSCORES')
    return {#expired, first[2] and tonumber(first[2]) or -1, trimmed}
end))

-- conveyor_release: gives a processing job back to the front of pending at once, for a worker that shuts down
-- before the job finished (not counted as a stall, nor as a failure).
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- ARGV[2]  lease token
-- ARGV[3]  optional: "unstarted" when the handler never ran (a job claimed ahead for an idle slot, or claimed in
--          the same round trip as a completion Redis refused): its attempt is not counted
-- Reply    "pending" ("cancelled" when a cancel was requested). Calling again replies the job's current status
--          without changing it while no other worker holds it. STALE or STATE as for conveyor_complete.
-- Flags    allow-oom, so a worker at maxmemory can still give its jobs back at shutdown.
redis.register_function{function_name = 'conveyor_release', callback = guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local token = argv[2]
    local job = require_job(prefix, queue, id)
    if job.status == 'pending' and job.released == token then
        return 'pending'
    end
    check_lease(queue, id, job, token)
    local now = now_ms()
    if job.cancel_requested == '1' then
        finish(prefix, queue, id, job, 'cancelled', now, {error = 'cancelled while its worker shut down'})
        return 'cancelled'
    end
    redis.call('ZREM', key(prefix, 'active'), id)
    local unstarted = argv[3] == 'unstarted'
    local attempts = tonumber(job.attempts) or 0
    if unstarted and attempts > 0 then attempts = attempts - 1 end
    redis.call('HSET', job_key(prefix, id), 'status', 'pending', 'released', token, 'updated_at', str(now),
        'attempts', str(attempts))
    redis.call('HDEL', job_key(prefix, id), 'lease')
    make_pending(prefix, id, job.priority, true, job.type, now)
    wake(prefix, 1)
    count(prefix, 'released')
    emit(prefix, full_id(queue, id), job.type, 'processing', 'pending', now, 'released by worker "'
        .. tostring(job.worker) .. (unstarted and '" before it started' or '" at shutdown'))
    return 'pending'
end), flags = {'allow-oom'}}

-- conveyor_progress: records a running job's progress (JSON), for watchers; the caller must hold the lease.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- ARGV[2]  lease token
-- ARGV[3]  progress: JSON text (e.g. 42 or {"done":10,"of":80})
-- Reply    "ok". STALE or STATE as for conveyor_complete; INVALID when the progress is not JSON.
redis.register_function('conveyor_progress', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local job = require_job(prefix, queue, id)
    check_lease(queue, id, job, argv[2])
    local progress = argv[3] or ''
    if not is_json(progress) then
        raise('INVALID', 'the progress is not valid JSON')
    end
    local now = now_ms()
    redis.call('HSET', job_key(prefix, id), 'progress', progress, 'updated_at', str(now))
    emit(prefix, full_id(queue, id), job.type, 'processing', 'processing', now)
    return 'ok'
end))

-- conveyor_trim: applies retention: deletes finished jobs older than the queue keeps them or beyond the number it
-- keeps (meta fields keep_<status>_ms and keep_<status>_count; defaults: completed 1 day / 10 000, failed 30 days
-- / 10 000, cancelled 7 days / 10 000), oldest first, at most `limit` per status. Completions do not do this
-- (their cost must not grow with the jobs kept): every worker's reclaim loop does, through conveyor_reclaim.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  how many jobs to delete per status at most (1…10000, default 1000)
-- Reply    how many were deleted (call again while it is above 0 to apply retention in full)
redis.register_function('conveyor_trim', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local limit = argv[1] and parse_int('limit', argv[1], 1, 10000) or TRIM_BATCH
    local now = now_ms()
    local trimmed = 0
    for status in pairs(FINISHED) do
        trimmed = trimmed + trim_finished(prefix, queue, status, now, limit)
    end
    return trimmed
end))
