-- The fields a finishing transition reads (HMGET, not the whole hash: the payload stays in Redis).
local FINISHING_FIELDS = {'status', 'lease', 'type', 'worker', 'unique_key', 'cancel_requested', 'retry_count',
    'max_retries'}

-- What a completion reads: fewer fields (each costs Redis a reply element).
local COMPLETING_FIELDS = {'status', 'lease', 'type', 'worker', 'unique_key', 'cancel_requested'}

local function load_finishing(prefix, id, fields)
    fields = fields or FINISHING_FIELDS
    local values = redis.call('HMGET', job_key(prefix, id), unpack(fields))
    if not values[1] then return nil end
    local job = {}
    for index, name in ipairs(fields) do
        if values[index] then job[name] = values[index] end
    end
    return job
end

-- Completions gathered in one call, written together by flush_completed: one ZREM, one ZADD, one counter, one event.
local function completed_batch()
    return {ids = {}, full_ids = {}, types = {}}
end

-- Completes one job into a batch; returns its status ("completed") or an error text (STALE, STATE, NOTFOUND,
-- INVALID …): one entry's problem never stops the others of a batch.
local function complete_one(prefix, queue, id, token, result, now, batch)
    local job = load_finishing(prefix, id, COMPLETING_FIELDS)
    if not job then
        return 'NOTFOUND no job "' .. full_id(queue, id) .. '" in queue "' .. queue .. '"'
    end
    if job.status == 'completed' and job.lease == token then
        return 'completed'
    end
    local problem = lease_problem(queue, id, job, token)
    if problem then return problem end
    if result ~= '' and not is_json(result) then
        return 'INVALID the result is not valid JSON'
    end
    local now_text = batch.now_text or str(now)
    batch.now_text = now_text
    if result ~= '' then
        redis.call('HSET', job_key(prefix, id), 'status', 'completed', 'finished_at', now_text, 'updated_at', now_text,
            'result', result)
    else
        redis.call('HSET', job_key(prefix, id), 'status', 'completed', 'finished_at', now_text, 'updated_at', now_text)
    end
    if job.cancel_requested then redis.call('HDEL', job_key(prefix, id), 'cancel_requested') end
    if job.unique_key then release_unique(prefix, queue, id, job) end
    local count_done = #batch.ids + 1
    batch.ids[count_done], batch.full_ids[count_done], batch.types[count_done] = id, full_id(queue, id), job.type or ''
    return 'completed'
end

local function flush_completed(prefix, batch, now)
    local count_done = #batch.ids
    if count_done == 0 then return end
    redis.call('ZREM', key(prefix, 'active'), unpack(batch.ids))
    local scored, now_text = {}, str(now)
    for index, id in ipairs(batch.ids) do
        scored[index * 2 - 1], scored[index * 2] = now_text, id
    end
    redis.call('ZADD', key(prefix, 'completed'), unpack(scored))
    count(prefix, 'completed', count_done, now)
    emit_many(prefix, batch.full_ids, batch.types, 'processing', 'completed', now)
end

-- Records one failed attempt; returns the new status ("retrying", "failed", "cancelled") or an error text.
-- how: {retry = bool, delay_ms = number or nil, base, cap, jitter, max_retries = number or nil}.
local function fail_one(prefix, queue, id, token, message, how, now)
    local job = load_finishing(prefix, id)
    if not job then
        return 'NOTFOUND no job "' .. full_id(queue, id) .. '" in queue "' .. queue .. '"'
    end
    if (job.status == 'retrying' or FINISHED[job.status]) and job.lease == token then
        return job.status
    end
    local problem = lease_problem(queue, id, job, token)
    if problem then return problem end
    if job.cancel_requested == '1' then
        finish(prefix, queue, id, job, 'cancelled', now, {error = message ~= '' and message or 'cancelled'})
        return 'cancelled'
    end
    local retry_count = tonumber(job.retry_count) or 0
    local max_retries = how.max_retries or tonumber(job.max_retries) or DEFAULT_MAX_RETRIES
    if how.retry and retry_count < max_retries then
        local delay_ms = how.delay_ms or math.floor(how.jitter * math.min(how.cap, how.base * 2 ^ retry_count))
        local retry_at = now + delay_ms
        redis.call('ZADD', key(prefix, 'retry'), str(retry_at), id)
        redis.call('ZREM', key(prefix, 'active'), id)
        redis.call('HSET', job_key(prefix, id), 'status', 'retrying', 'error', message,
            'retry_count', str(retry_count + 1), 'run_at', str(retry_at), 'updated_at', str(now))
        lower_next_due(prefix, retry_at)
        count(prefix, 'retried', 1, now)
        emit(prefix, full_id(queue, id), job.type, 'processing', 'retrying', now, message)
        return 'retrying'
    end
    -- "permanent": failed by an error that said not to retry (exit 65, JobFailure.permanent), retries left or not;
    -- such a job is not among the retryable failed ones.
    finish(prefix, queue, id, job, 'failed', now, {error = message, permanent = how.retry and '0' or '1'})
    return 'failed'
end

-- Reads a failure's retry settings (strings from ARGV; nil or '' means the default); raises INVALID.
local function failure_settings(retry, delay, base, cap, jitter, max_retries)
    if retry and retry ~= '' and retry ~= '0' and retry ~= '1' then
        raise('INVALID', 'retry must be 0 or 1')
    end
    local how = {retry = retry ~= '0'}
    how.delay_ms = delay and delay ~= '' and parse_int('delay_ms', delay, 0, MAX_FUTURE_MS) or nil
    how.max_retries = max_retries and max_retries ~= '' and parse_int('max_retries', max_retries, 0, 10000) or nil
    how.base = base and base ~= '' and parse_int('backoff_base_ms', base, 0, MAX_FUTURE_MS) or 1000
    how.cap = cap and cap ~= '' and parse_int('backoff_cap_ms', cap, 0, MAX_FUTURE_MS) or 3600000
    how.jitter = 1
    if jitter and jitter ~= '' then
        how.jitter = tonumber(jitter)
        -- (jitter ~= jitter) is true only for NaN.
        if not how.jitter or how.jitter ~= how.jitter or how.jitter < 0 or how.jitter > 1 then
            raise('INVALID', 'jitter must be a number from 0 to 1')
        end
    end
    return how
end

-- Turns an error text of complete_one/fail_one into the call's error reply.
local function status_reply(status)
    if string.match(status, '^%u+ ') then return redis.error_reply(status) end
    return status
end

-- conveyor_complete: records a job's result; the caller must hold its lease.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- ARGV[2]  lease token (from conveyor_claim or conveyor_take)
-- ARGV[3]  result: JSON text, or empty for none
-- Reply    "completed". Calling again with the same token replies "completed" and changes nothing.
--          STALE when the token is not the job's current one; STATE when the job is not processing.
redis.register_function('conveyor_complete', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local now = now_ms()
    local batch = completed_batch()
    local status = complete_one(prefix, queue, id, argv[2], argv[3] or '', now, batch)
    flush_completed(prefix, batch, now)
    return status_reply(status)
end))

local FAIL_OPTIONS = {
    retry = true, delay_ms = true, backoff_base_ms = true, backoff_cap_ms = true, jitter = true, max_retries = true,
}

-- conveyor_fail: records a failed attempt: retry later, or fail for good; the caller must hold the lease.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job id
-- ARGV[2]  lease token
-- ARGV[3]  error message
-- ARGV[4…] options as name value pairs:
--          retry (1 = retry when retries are left, the default; 0 = do not retry);
--          delay_ms (retry after exactly this), or backoff_base_ms + backoff_cap_ms + jitter (0…1): the delay is
--          jitter × min(cap, base × 2^retry_count) (defaults 1000, 3600000 and 1). For full jitter the caller
--          passes a random fraction as jitter (Lua in Redis has no good randomness); the Swift client does;
--          max_retries: use this limit instead of the job's own (a worker's per-type setting)
-- Reply    the new status: "retrying" (in the retry set, run_at is the retry time), "failed", or "cancelled" (a
--          cancel was requested). Calling again with the same token replies the same and changes nothing.
redis.register_function('conveyor_fail', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local id = local_id(queue, argv[1])
    local opts = options(argv, 4, FAIL_OPTIONS)
    local how = failure_settings(opts.retry, opts.delay_ms, opts.backoff_base_ms, opts.backoff_cap_ms, opts.jitter,
        opts.max_retries)
    return status_reply(fail_one(prefix, queue, id, argv[2], argv[3] or '', how, now_ms()))
end))
