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
    local token, result = argv[2], argv[3] or ''
    local job = require_job(prefix, queue, id)
    if job.status == 'completed' and job.lease == token then
        return 'completed'
    end
    check_lease(queue, id, job, token)
    if result ~= '' and not is_json(result) then
        raise('INVALID', 'the result is not valid JSON')
    end
    local now = now_ms()
    local fields = {}
    if result ~= '' then fields.result = result end
    finish(prefix, queue, id, job, 'completed', now, fields)
    return 'completed'
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
    local token, message = argv[2], argv[3] or ''
    local opts = options(argv, 4, FAIL_OPTIONS)
    local job = require_job(prefix, queue, id)
    if (job.status == 'retrying' or FINISHED[job.status]) and job.lease == token then
        return job.status
    end
    check_lease(queue, id, job, token)
    local retry = opts.retry ~= '0'
    if opts.retry and opts.retry ~= '0' and opts.retry ~= '1' then
        raise('INVALID', 'retry must be 0 or 1')
    end
    local delay_ms = opts.delay_ms and parse_int('delay_ms', opts.delay_ms, 0, MAX_FUTURE_MS)
    local max_override = opts.max_retries and parse_int('max_retries', opts.max_retries, 0, 10000)
    local base = opts.backoff_base_ms and parse_int('backoff_base_ms', opts.backoff_base_ms, 0, MAX_FUTURE_MS) or 1000
    local cap = opts.backoff_cap_ms and parse_int('backoff_cap_ms', opts.backoff_cap_ms, 0, MAX_FUTURE_MS) or 3600000
    local jitter = 1
    if opts.jitter then
        jitter = tonumber(opts.jitter)
        -- (jitter ~= jitter) is true only for NaN.
        if not jitter or jitter ~= jitter or jitter < 0 or jitter > 1 then
            raise('INVALID', 'jitter must be a number from 0 to 1')
        end
    end
    local now = now_ms()
    if job.cancel_requested == '1' then
        finish(prefix, queue, id, job, 'cancelled', now, {error = message ~= '' and message or 'cancelled'})
        return 'cancelled'
    end
    local retry_count = tonumber(job.retry_count) or 0
    local max_retries = max_override or tonumber(job.max_retries) or DEFAULT_MAX_RETRIES
    if retry and retry_count < max_retries then
        if not delay_ms then
            delay_ms = math.floor(jitter * math.min(cap, base * 2 ^ retry_count))
        end
        local retry_at = now + delay_ms
        redis.call('ZADD', key(prefix, 'retry'), str(retry_at), id)
        redis.call('ZREM', key(prefix, 'active'), id)
        redis.call('HSET', job_key(prefix, id), 'status', 'retrying', 'error', message,
            'retry_count', str(retry_count + 1), 'run_at', str(retry_at), 'updated_at', str(now))
        count(prefix, 'retried')
        emit(prefix, full_id(queue, id), job.type, 'processing', 'retrying', now, message)
        return 'retrying'
    end
    -- "permanent": failed by an error that said not to retry (exit 65, JobFailure.permanent), retries left or not;
    -- such a job is not among the retryable failed ones.
    finish(prefix, queue, id, job, 'failed', now, {error = message, permanent = retry and '0' or '1'})
    return 'failed'
end))
