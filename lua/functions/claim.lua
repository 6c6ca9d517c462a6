-- conveyor_claim: promotes due scheduled and retrying jobs, then takes up to N pending jobs for a worker.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  worker id (shown in the job's "worker" field)
-- ARGV[2]  lease in ms: the job returns to pending if not completed, failed or heartbeated by then
-- ARGV[3]  how many jobs to take (1…1000, default 1)
-- ARGV[4]  how many due jobs to promote at most in this call (default 1000)
-- Reply    {jobs, next_due_ms, paused}: jobs is an array of jobs, each the flat field/value list of its hash
--          (HGETALL form, with "id" and "queue" filled in from the key when the hash leaves them out) including
--          its fresh "lease" token; next_due_ms is the earliest time a scheduled or retry job may fall due (-1 if
--          none; a lower bound: when it has passed, claim again; in the past when more jobs were due than the
--          promote limit); paused is 1 when the queue is paused (then no job is taken).
--          A job hash that is malformed is moved to failed with an error naming the bad field, not returned.
--          When the queue has no job left, the call deletes <prefix>:wake (see wake() in lua/library.lua).

-- Moves due jobs from a time-ordered set (scheduled or retry) to pending; returns how many. An entry whose job is
-- gone or in another state is a stale index entry and is only dropped.
local function promote(prefix, queue, index_name, expected_status, now, limit)
    local index = key(prefix, index_name)
    local due = redis.call('ZRANGEBYSCORE', index, '-inf', str(now), 'LIMIT', 0, limit)
    if #due == 0 then return 0 end
    call_chunked('ZREM', index, due)
    local ids, types, pushes = {}, {}, new_pushes()
    for _, id in ipairs(due) do
        local job = redis.call('HMGET', job_key(prefix, id), 'status', 'priority', 'type')
        if job[1] == expected_status then
            redis.call('HSET', job_key(prefix, id), 'status', 'pending', 'updated_at', str(now))
            make_pending(prefix, id, job[2], false, job[3], now, pushes)
            table.insert(ids, full_id(queue, id))
            table.insert(types, job[3] or '')
        end
    end
    flush_pushes(prefix, pushes)
    emit_many(prefix, ids, types, expected_status, 'pending', now)
    return #ids
end

-- Promotes due scheduled and retrying jobs once next_due has passed (O(1) otherwise); returns the next due time
-- (nil when none) and how many jobs were promoted.
local function promote_due(prefix, queue, now, limit)
    local meta = queue_meta(prefix)
    local due
    if not meta.next_due then
        due = compute_next_due(prefix)
    elseif meta.next_due ~= 'none' then
        due = tonumber(meta.next_due)
    end
    if not due or due > now then return due, 0 end
    local promoted = promote(prefix, queue, 'scheduled', 'scheduled', now, limit)
        + promote(prefix, queue, 'retry', 'retrying', now, limit)
    return compute_next_due(prefix), promoted
end

-- Pops up to `wanted` pending ids in run order: higher priorities, then the list (priority 0), then lower
-- priorities. Returns the ids, which of them came from the list, and whether the queue is now empty.
local function pop_many(prefix, wanted)
    local ids, from_list = {}, {}
    local prioritized = key(prefix, 'prioritized')
    local high = redis.call('ZRANGEBYSCORE', prioritized, '-inf', '(' .. str(DEFAULT_BAND_START), 'LIMIT', 0, wanted)
    if #high > 0 then
        redis.call('ZREM', prioritized, unpack(high))
        for _, id in ipairs(high) do table.insert(ids, id) end
    end
    if #ids < wanted then
        local popped = redis.call('LPOP', key(prefix, 'pending'), wanted - #ids)
        for _, id in ipairs(popped or {}) do
            table.insert(ids, id)
            from_list[#ids] = true
        end
    end
    if #ids < wanted then
        local low = redis.call('ZRANGE', prioritized, 0, wanted - #ids - 1)
        if #low > 0 then
            redis.call('ZREM', prioritized, unpack(low))
            for _, id in ipairs(low) do table.insert(ids, id) end
        end
    end
    return ids, from_list, #ids < wanted
end

-- Takes claimed jobs out of the pending index of their type: for jobs from the list, one LPOP per type, which
-- finds them at the head of their type's list (same order); anything else (an entry of the sorted set, written by
-- version 1 of the layout, or a list out of step after a hand edit) is removed one by one.
local function unindex_types(prefix, listed, sorted)
    for job_type, ids in pairs(listed) do
        local list = type_list(prefix, job_type)
        local popped = redis.call('LPOP', list, #ids) or {}
        local in_step = #popped == #ids
        for index = 1, #popped do
            if popped[index] ~= ids[index] then in_step = false end
        end
        if not in_step then
            if #popped > 0 then
                local back = {}
                for index = #popped, 1, -1 do table.insert(back, popped[index]) end
                redis.call('LPUSH', list, unpack(back))
            end
            for _, id in ipairs(ids) do
                redis.call('LREM', list, 1, id)
                redis.call('ZREM', type_index(prefix, job_type), id)
            end
        end
    end
    for job_type, ids in pairs(sorted) do
        redis.call('ZREM', type_index(prefix, job_type), unpack(ids))
    end
end

-- A job hash as the flat field/value list a claim replies with, "id" and "queue" included. Packed (for
-- conveyor_report), it is one string: the names and values joined by NUL bytes, which Redis converts much faster
-- than a list of strings; a job with a NUL in some value (written by hand) is sent as the list.
local FREE_TEXT = {'error', 'result', 'progress', 'reference_id', 'unique_key', 'worker', 'held_run_at'}

local function flat_job(job, queue, id, packed)
    job.id = job.id or full_id(queue, id)
    job.queue = job.queue or queue
    local flat, count = {}, 0
    for name, value in pairs(job) do
        flat[count + 1], flat[count + 2] = name, value
        count = count + 2
    end
    if not packed then return flat end
    -- Only free text can hold a NUL: ids, types, statuses and numbers are checked, payloads are JSON.
    for _, name in ipairs(FREE_TEXT) do
        local value = job[name]
        if value and string.find(value, '\0', 1, true) then return flat end
    end
    return table.concat(flat, '\0')
end

-- Puts loaded pending jobs in processing, each with a fresh lease token; returns their flat hashes.
local function start_all(prefix, queue, loaded, worker, lease_ms, now, from, packed)
    if #loaded == 0 then return {} end
    local last = redis.call('HINCRBY', key(prefix, 'meta'), 'lease_sequence', #loaded)
    local jobs, active, ids, types = {}, {}, {}, {}
    local now_text, expiry = str(now), str(now + lease_ms)
    for index, entry in ipairs(loaded) do
        local id, job = entry[1], entry[2]
        local token = tostring(last - #loaded + index)
        local attempts = tostring((tonumber(job.attempts) or 0) + 1)
        redis.call('HSET', job_key(prefix, id), 'status', 'processing', 'worker', worker, 'lease', token,
            'attempts', attempts, 'started_at', now_text, 'updated_at', now_text)
        if job.cancel_requested then
            redis.call('HDEL', job_key(prefix, id), 'cancel_requested')
            job.cancel_requested = nil
        end
        job.status, job.worker, job.lease, job.attempts = 'processing', worker, token, attempts
        job.started_at, job.updated_at = now_text, now_text
        jobs[index] = flat_job(job, queue, id, packed)
        active[index * 2 - 1], active[index * 2] = expiry, id
        ids[index], types[index] = full_id(queue, id), job.type
    end
    redis.call('ZADD', key(prefix, 'active'), unpack(active))
    count(prefix, 'started', #loaded, now)
    emit_many(prefix, ids, types, from, 'processing', now)
    return jobs
end

-- The claim of conveyor_claim and conveyor_report: returns the jobs (flat hashes), the next due time (-1 when none)
-- and 1 when the queue is paused.
local function claim_jobs(prefix, queue, worker, lease_ms, wanted, promote_limit, now, packed)
    local next_due, promoted = promote_due(prefix, queue, now, promote_limit)
    if queue_meta(prefix).paused == '1' then
        redis.call('DEL', key(prefix, 'wake'))
        return {}, next_due or -1, 1
    end
    if wanted <= 0 then
        wake(prefix, promoted)
        return {}, next_due or -1, 0
    end
    local ids, from_list, empty = pop_many(prefix, wanted)
    if empty then
        redis.call('DEL', key(prefix, 'wake'))
    elseif promoted > #ids then
        wake(prefix, promoted - #ids)
    end
    local loaded, listed, sorted = {}, {}, {}
    local by_type = indexes_types(prefix)
    for index, id in ipairs(ids) do
        local job = load_job(prefix, id)
        if job and by_type then
            local group = from_list[index] and listed or sorted
            group[job.type or ''] = group[job.type or ''] or {}
            table.insert(group[job.type or ''], id)
        end
        -- A status that is no status at all would leave the job in no index: it fails, with the reason.
        if job and (job.status == 'pending' or not KNOWN_STATUS[job.status]) then
            local problem = malformed(job, queue, id)
            if problem then
                finish(prefix, queue, id, job, 'failed', now,
                    {error = 'malformed job hash: ' .. problem .. '; fix the producer, then retry or remove the job'})
            else
                loaded[#loaded + 1] = {id, job}
            end
        end
        -- A vanished hash or one in another state was a stale index entry: popping it cleaned it up.
    end
    if by_type then unindex_types(prefix, listed, sorted) end
    return start_all(prefix, queue, loaded, worker, lease_ms, now, 'pending', packed), next_due or -1, 0
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
    local jobs, next_due, paused = claim_jobs(prefix, queue, worker, lease_ms, wanted, promote_limit, now_ms())
    return {jobs, next_due, paused}
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
    return start_all(prefix, queue, {{id, job}}, argv[2], lease_ms, now, job.status)[1]
end))
