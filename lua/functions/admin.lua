-- conveyor_cancel: cancels a job that has not finished.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- Reply    "cancelled" for a scheduled, pending or retrying job (and for one already cancelled: no change);
--          "cancelling" for a processing job: its worker learns it from its next heartbeat, stops the handler,
--          and the job ends cancelled. STATE for a completed or failed job.
redis.register_function('conveyor_cancel', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local job = require_job(prefix, queue, id)
    if job.status == 'cancelled' then
        return 'cancelled'
    end
    if job.status == 'processing' then
        redis.call('HSET', job_key(prefix, id), 'cancel_requested', '1', 'updated_at', str(now_ms()))
        return 'cancelling'
    end
    if job.status == 'completed' or job.status == 'failed' then
        raise('STATE', 'job "' .. full_id(queue, id) .. '" is ' .. job.status
            .. ' and cannot be cancelled; remove it instead')
    end
    finish(prefix, queue, id, job, 'cancelled', now_ms(), {})
    return 'cancelled'
end))

-- conveyor_retry: runs a job again now: a failed or cancelled one (its retry count starts again from 0), or a
-- scheduled or retrying one (without waiting for its time).
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- Reply    "pending" (also for a job already pending: no change). STATE for a processing or completed job;
--          DUPLICATE when another live job now holds the job's unique_key.
redis.register_function('conveyor_retry', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local job = require_job(prefix, queue, id)
    if job.status == 'pending' then
        return 'pending'
    end
    if job.status ~= 'failed' and job.status ~= 'cancelled' and job.status ~= 'scheduled' and job.status ~= 'retrying' then
        raise('STATE', 'job "' .. full_id(queue, id) .. '" is ' .. tostring(job.status)
            .. '; only failed, cancelled, scheduled or retrying jobs can be retried')
    end
    if job.unique_key and job.unique_key ~= '' then
        local unique_key = key(prefix, 'unique:' .. job.unique_key)
        local holder = redis.call('GET', unique_key)
        if holder and holder ~= full_id(queue, id) then
            local holder_id = string.match(holder, '^[^/]+/(.+)$')
            local holder_status = holder_id and redis.call('HGET', job_key(prefix, holder_id), 'status')
            if holder_status and not FINISHED[holder_status] then
                raise('DUPLICATE', 'job "' .. holder .. '" (' .. holder_status .. ') holds unique key "'
                    .. job.unique_key .. '"; cancel or remove it first')
            end
        end
        redis.call('SET', unique_key, full_id(queue, id))
    end
    local now = now_ms()
    unindex(prefix, id, job.status, job.type)
    local fields = {'status', 'pending', 'run_at', str(now), 'updated_at', str(now)}
    if FINISHED[job.status] then
        table.insert(fields, 'retry_count'); table.insert(fields, '0')
        redis.call('HDEL', job_key(prefix, id), 'finished_at', 'cancel_requested', 'permanent')
    end
    redis.call('HSET', job_key(prefix, id), unpack(fields))
    make_pending(prefix, id, job.priority, false, job.type, now)
    wake(prefix, 1)
    count(prefix, 'requeued')
    emit(prefix, full_id(queue, id), job.type, job.status, 'pending', now)
    return 'pending'
end))

-- conveyor_remove: deletes a job and every index entry of it.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- ARGV[2]  "force" to remove a processing job too (its worker's complete or fail then gets NOTFOUND)
-- Reply    "removed". NOTFOUND when there is no such job; STATE for a processing job without "force".
redis.register_function('conveyor_remove', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    if argv[2] and argv[2] ~= 'force' then
        raise('INVALID', 'the second argument may only be "force"')
    end
    local job = require_job(prefix, queue, id)
    if job.status == 'processing' and argv[2] ~= 'force' then
        raise('STATE', 'job "' .. full_id(queue, id) .. '" is processing; cancel it, or remove it with "force"')
    end
    unindex(prefix, id, job.status, job.type)
    delete_record(prefix, queue, id, job)
    count(prefix, 'removed')
    emit(prefix, full_id(queue, id), job.type, job.status, 'removed', now_ms())
    return 'removed'
end))

-- conveyor_pause / conveyor_resume: stop and restart handing out jobs of the queue (enqueueing goes on).
--
-- KEYS[1]  queue prefix
-- Reply    "paused" / "resumed"
redis.register_function('conveyor_pause', guarded(function(keys)
    queue_of(keys[1])
    redis.call('HSET', key(keys[1], 'meta'), 'paused', '1')
    emit_queue_event(keys[1], 'paused', now_ms())
    return 'paused'
end))

redis.register_function('conveyor_resume', guarded(function(keys)
    queue_of(keys[1])
    redis.call('HDEL', key(keys[1], 'meta'), 'paused')
    -- Workers idle on a paused queue wait for a wake-up: one per pending job (an enqueue used to be needed).
    wake(keys[1], redis.call('LLEN', key(keys[1], 'pending')) + redis.call('ZCARD', key(keys[1], 'prioritized')))
    emit_queue_event(keys[1], 'resumed', now_ms())
    return 'resumed'
end))

-- conveyor_cleanup: deletes finished jobs that finished before a time, oldest first, a bounded number per call.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  status: completed, failed or cancelled
-- ARGV[2]  cutoff, epoch ms: jobs that finished before it are deleted
-- ARGV[3]  how many to delete at most in this call (1…10000)
-- Reply    how many were deleted; call again while it equals the limit
redis.register_function('conveyor_cleanup', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local status = argv[1]
    if not FINISHED[status] then
        raise('INVALID', 'status must be completed, failed or cancelled, got "' .. tostring(status) .. '"')
    end
    local cutoff = parse_int('cutoff', argv[2], 0, 2 ^ 50)
    local limit = parse_int('limit', argv[3], 1, 10000)
    local index = key(prefix, status)
    local victims = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. str(cutoff), 'LIMIT', 0, limit)
    for _, id in ipairs(victims) do
        delete_record(prefix, queue, id, load_job(prefix, id))
        redis.call('ZREM', index, id)
    end
    if #victims > 0 then count(prefix, 'cleaned', #victims) end
    return #victims
end))

-- conveyor_hold: holds a pending or scheduled job: it stays `scheduled`, with `held` = 1, and never falls due until
-- released (the origin JobManager's pause_job for a single job).
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- Reply    "held" (also when already held). STATE for a job that is not pending or scheduled.
redis.register_function('conveyor_hold', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local job = require_job(prefix, queue, id)
    if job.held == '1' then return 'held' end
    if job.status ~= 'pending' and job.status ~= 'scheduled' then
        raise('STATE', 'job "' .. full_id(queue, id) .. '" is ' .. tostring(job.status)
            .. '; only pending or scheduled jobs can be held')
    end
    local now = now_ms()
    unindex(prefix, id, job.status, job.type)
    redis.call('HSET', job_key(prefix, id), 'status', 'scheduled', 'held', '1', 'held_run_at', job.run_at or job.created_at or str(now),
        'updated_at', str(now))
    redis.call('ZADD', key(prefix, 'scheduled'), str(now + MAX_FUTURE_MS * 10), id)
    emit(prefix, full_id(queue, id), job.type, job.status, 'scheduled', now, 'held')
    return 'held'
end))

-- conveyor_unhold: releases a held job: back to pending, or scheduled at its time if that is still ahead.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- Reply    the job's status ("pending" or "scheduled"; unchanged when it was not held)
redis.register_function('conveyor_unhold', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local job = require_job(prefix, queue, id)
    if job.held ~= '1' then return job.status end
    local now = now_ms()
    local run_at = tonumber(job.held_run_at) or now
    redis.call('ZREM', key(prefix, 'scheduled'), id)
    redis.call('HDEL', job_key(prefix, id), 'held', 'held_run_at')
    local status = run_at > now and 'scheduled' or 'pending'
    redis.call('HSET', job_key(prefix, id), 'status', status, 'updated_at', str(now))
    if status == 'scheduled' then
        redis.call('ZADD', key(prefix, 'scheduled'), str(run_at), id)
        lower_next_due(prefix, run_at)
    else
        make_pending(prefix, id, job.priority, false, job.type, now)
        wake(prefix, 1)
    end
    emit(prefix, full_id(queue, id), job.type, 'scheduled', status, now, 'released')
    return status
end))

-- conveyor_set_type_index: turns a queue's pending index by type on, building it from the jobs pending now, or
-- off, deleting it (meta field type_index; off by default). pending(type) reads it when on; without it, listing
-- the pending jobs of one type scans the pending jobs.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  "on" or "off"
-- Reply    how many pending jobs the index holds now (0 when off). The call walks every pending job once.
redis.register_function('conveyor_set_type_index', guarded(function(keys, argv)
    local prefix = keys[1]
    queue_of(prefix)
    if argv[1] ~= 'on' and argv[1] ~= 'off' then
        raise('INVALID', 'the type index setting must be "on" or "off", got "' .. tostring(argv[1]) .. '"')
    end
    local listed = redis.call('LRANGE', key(prefix, 'pending'), 0, -1)
    local prioritized = redis.call('ZRANGE', key(prefix, 'prioritized'), 0, -1, 'WITHSCORES')
    local lists, sorted, seen = {}, {}, {}
    for _, id in ipairs(listed) do
        local job_type = redis.call('HGET', job_key(prefix, id), 'type')
        if job_type then
            seen[job_type] = true
            lists[job_type] = lists[job_type] or {}
            table.insert(lists[job_type], id)
        end
    end
    for index = 1, #prioritized, 2 do
        local job_type = redis.call('HGET', job_key(prefix, prioritized[index]), 'type')
        if job_type then
            seen[job_type] = true
            sorted[job_type] = sorted[job_type] or {}
            table.insert(sorted[job_type], prioritized[index + 1])
            table.insert(sorted[job_type], prioritized[index])
        end
    end
    for job_type in pairs(seen) do
        redis.call('DEL', type_list(prefix, job_type), type_index(prefix, job_type))
    end
    if argv[1] == 'off' then
        redis.call('HDEL', key(prefix, 'meta'), 'type_index')
        return 0
    end
    redis.call('HSET', key(prefix, 'meta'), 'type_index', '1')
    local total = 0
    for job_type, ids in pairs(lists) do
        push_all(type_list(prefix, job_type), ids)
        total = total + #ids
    end
    for job_type, scored in pairs(sorted) do
        for first = 1, #scored, 1000 do
            redis.call('ZADD', type_index(prefix, job_type), unpack(scored, first, math.min(#scored, first + 999)))
        end
        total = total + #scored / 2
    end
    return total
end))
