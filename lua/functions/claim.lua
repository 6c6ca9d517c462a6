-- conveyor_claim: promotes due scheduled and retrying jobs, then takes up to N pending jobs for a worker.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  worker id (shown in the job's "worker" field)
-- ARGV[2]  lease in ms: the job returns to pending if not completed, failed or heartbeated by then
-- ARGV[3]  how many jobs to take (1…1000, default 1)
-- ARGV[4]  how many due jobs to promote at most in this call (default 1000)
-- Reply    {jobs, next_due_ms, paused}: jobs is an array of jobs, each the flat field/value list of its hash
--          (HGETALL form) including its fresh "lease" token; next_due_ms is the earliest scheduled or retry time
--          left (-1 if none; in the past when more jobs were due than the promote limit: claim again);
--          paused is 1 when the queue is paused (then no job is taken).
--          A job hash that is malformed is moved to failed with an error naming the bad field, not returned.

-- Moves due jobs from a time-ordered set (scheduled or retry) to pending; returns how many. An entry whose job is
-- gone or in another state is a stale index entry and is only dropped.
local function promote(prefix, queue, index_name, expected_status, now, limit)
    local index = key(prefix, index_name)
    local due = redis.call('ZRANGEBYSCORE', index, '-inf', str(now), 'LIMIT', 0, limit)
    for _, id in ipairs(due) do
        redis.call('ZREM', index, id)
        local job = redis.call('HMGET', job_key(prefix, id), 'status', 'priority', 'type')
        if job[1] == expected_status then
            redis.call('HSET', job_key(prefix, id), 'status', 'pending', 'updated_at', str(now))
            make_pending(prefix, id, job[2], false, job[3], now)
            emit(prefix, full_id(queue, id), job[3], job[1], 'pending', now)
        end
    end
    return #due
end

local function pop_next(prefix)
    local prioritized = key(prefix, 'prioritized')
    local top = redis.call('ZRANGE', prioritized, 0, 0, 'WITHSCORES')
    if top[1] and tonumber(top[2]) < DEFAULT_BAND_START then
        redis.call('ZREM', prioritized, top[1])
        return top[1]
    end
    local id = redis.call('LPOP', key(prefix, 'pending'))
    if id then return id end
    if top[1] then
        redis.call('ZREM', prioritized, top[1])
        return top[1]
    end
    return nil
end

local function next_due(prefix)
    local due = -1
    for _, name in ipairs({'scheduled', 'retry'}) do
        local first = redis.call('ZRANGE', key(prefix, name), 0, 0, 'WITHSCORES')
        if first[2] then
            local at = tonumber(first[2])
            if due < 0 or at < due then due = at end
        end
    end
    return due
end

-- Puts a job in processing with a fresh lease; returns its hash as a flat list.
local function start(prefix, queue, id, job, worker, lease_ms, now)
    local token = str(redis.call('HINCRBY', key(prefix, 'meta'), 'lease_sequence', 1))
    local attempts = (tonumber(job.attempts) or 0) + 1
    redis.call('HSET', job_key(prefix, id), 'status', 'processing', 'worker', worker, 'lease', token,
        'attempts', str(attempts), 'started_at', str(now), 'updated_at', str(now))
    redis.call('HDEL', job_key(prefix, id), 'cancel_requested')
    redis.call('ZADD', key(prefix, 'active'), str(now + lease_ms), id)
    count(prefix, 'started')
    emit(prefix, full_id(queue, id), job.type, job.status, 'processing', now)
    return redis.call('HGETALL', job_key(prefix, id))
end

local function check_worker(worker, lease)
    if type(worker) ~= 'string' or #worker == 0 or #worker > 200 then
        raise('INVALID', 'the worker id must be 1-200 characters')
    end
    return parse_int('lease_ms', lease, 1, 86400000)
end

redis.register_function('conveyor_claim', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local worker = argv[1]
    local lease_ms = check_worker(worker, argv[2])
    local wanted = argv[3] and parse_int('count', argv[3], 1, 1000) or 1
    local promote_limit = argv[4] and parse_int('promote limit', argv[4], 1, 100000) or 1000
    local now = now_ms()
    promote(prefix, queue, 'scheduled', 'scheduled', now, promote_limit)
    promote(prefix, queue, 'retry', 'retrying', now, promote_limit)
    if redis.call('HGET', key(prefix, 'meta'), 'paused') == '1' then
        return {{}, next_due(prefix), 1}
    end
    local jobs = {}
    -- Bounded: malformed or vanished entries are skipped, but at most wanted + 100 entries are looked at.
    for _ = 1, wanted + 100 do
        if #jobs >= wanted then break end
        local id = pop_next(prefix)
        if not id then break end
        local job = load_job(prefix, id)
        if job then
            redis.call('ZREM', type_index(prefix, job.type), id)
        end
        -- A status that is no status at all would leave the job in no index: it fails, with the reason.
        if job and (job.status == 'pending' or not KNOWN_STATUS[job.status]) then
            local problem = malformed(job, queue, id)
            if problem then
                finish(prefix, queue, id, job, 'failed', now,
                    {error = 'malformed job hash: ' .. problem .. '; fix the producer, then retry or remove the job'})
            else
                table.insert(jobs, start(prefix, queue, id, job, worker, lease_ms, now))
            end
        end
        -- A vanished hash or one in another state was a stale index entry: popping it cleaned it up.
    end
    return {jobs, next_due(prefix), 0}
end))

-- conveyor_take: claims one given job now, from pending, scheduled or retrying (the origin's mark_processing),
-- also when the queue is paused (the caller asked for this job). A malformed job hash is moved to failed.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- ARGV[2]  worker id
-- ARGV[3]  lease in ms
-- Reply    the job's hash as a flat field/value list, including its fresh "lease" token
redis.register_function('conveyor_take', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local lease_ms = check_worker(argv[2], argv[3])
    local job = require_job(prefix, queue, id)
    if job.status ~= 'pending' and job.status ~= 'scheduled' and job.status ~= 'retrying' then
        raise('STATE', 'job "' .. full_id(queue, id) .. '" is ' .. tostring(job.status)
            .. '; only pending, scheduled or retrying jobs can be taken')
    end
    local now = now_ms()
    local problem = malformed(job, queue, id)
    if problem then
        finish(prefix, queue, id, job, 'failed', now,
            {error = 'malformed job hash: ' .. problem .. '; fix the producer, then retry or remove the job'})
        return err('STATE', 'job "' .. full_id(queue, id) .. '" is malformed (' .. problem .. ') and was moved to failed')
    end
    unindex(prefix, id, job.status, job.type)
    return start(prefix, queue, id, job, argv[2], lease_ms, now)
end))
