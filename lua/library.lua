#!lua name=conveyor
-- Conveyor's Redis function library: the shared helpers. Every state transition is one function, registered by
-- one file in lua/functions/; the library loaded into Redis is this file followed by those files in name order:
--
--   cat lua/library.lua lua/functions/*.lua | redis-cli -x FUNCTION LOAD REPLACE
--
-- Every function takes exactly one key, the queue's key prefix `<namespace>:{<queue>}`, and builds the queue's
-- other keys from it (`<prefix>:pending`, `<prefix>:job:<id>`, …), so all keys one call touches share the hash tag
-- `{<queue>}` and live in one Redis Cluster slot. Redis TIME is the only clock. Errors are replies whose first word
-- is a code: INVALID (bad input), NOTFOUND (no such job), STATE (wrong state), STALE (lease token does not match),
-- DUPLICATE (another live job holds the unique key).
-- lua/README.md documents the keys, the job hash fields and every function.

local MAX_PRIORITY = 100
local PRIORITY_BAND = 2 ^ 44 -- score = (MAX_PRIORITY - priority) * band + sequence: higher priority, then FIFO
local DEFAULT_BAND_START = MAX_PRIORITY * PRIORITY_BAND
local DEFAULT_MAX_RETRIES = 3
local DEFAULT_MAX_PAYLOAD = 1048576
local MAX_FUTURE_MS = 10 * 366 * 86400000 -- run_at further than ~10 years ahead is refused
local TRIM_BATCH = 20 -- finished jobs deleted per transition at most (retention)
local DEFAULT_KEEP = {
    completed = {ms = 86400000, count = 10000},
    failed = {ms = 30 * 86400000, count = 10000},
    cancelled = {ms = 7 * 86400000, count = 10000},
}
local DEFAULT_EVENTS_MAX = 10000
local FINISHED = {completed = true, failed = true, cancelled = true}
local KNOWN_STATUS = {
    scheduled = true, pending = true, processing = true, retrying = true,
    completed = true, failed = true, cancelled = true,
}
-- The one range of every integer field of a job hash: enqueue refuses values outside it, and a hash holding one
-- (written by hand) is malformed. Swift's Job.fieldRanges holds the same table; a test compares them.
local FIELD_RANGES = {
    max_retries = {0, 10000},
    retry_count = {0, 1000000000},
    attempts = {0, 1000000000},
    priority = {-100, 100},
    timeout_ms = {0, 30 * 86400000},
    stalls = {0, 1000000000},
}
local INTEGER_FIELDS = {'max_retries', 'retry_count', 'attempts', 'priority', 'timeout_ms', 'stalls'}

local function now_ms()
    local time = redis.call('TIME')
    return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Integers as plain decimal text (tostring would switch to exponent notation for large numbers).
local function str(number)
    return string.format('%.0f', number)
end

local function err(code, message)
    return redis.error_reply(code .. ' ' .. message)
end

-- Raises an error reply from deep inside a helper; functions catch nothing, so it becomes the call's reply and
-- nothing is written (every function validates before its first write).
local function raise(code, message)
    error({err = code .. ' ' .. message})
end

local function queue_of(prefix)
    local namespace, queue = string.match(prefix or '', '^([%w_%.%-:]+):{([%w_%.%-]+)}$')
    if not queue or #queue > 64 then
        raise('INVALID', 'the key must be a queue prefix <namespace>:{<queue>} (queue: 1-64 letters, digits, _ . -), got "' .. tostring(prefix) .. '"')
    end
    return queue, namespace
end

local function key(prefix, suffix)
    return prefix .. ':' .. suffix
end

local function job_key(prefix, id)
    return prefix .. ':job:' .. id
end

local function full_id(queue, id)
    return queue .. '/' .. id
end

-- A job id as callers write it: either the id within the queue ("order-42") or the full id ("emails/order-42").
local function local_id(queue, id)
    if type(id) ~= 'string' or id == '' then
        raise('INVALID', 'the job id is empty')
    end
    local given_queue, rest = string.match(id, '^([^/]+)/(.+)$')
    if given_queue then
        if given_queue ~= queue then
            raise('INVALID', 'job id "' .. id .. '" belongs to queue "' .. given_queue .. '", not "' .. queue .. '"')
        end
        id = rest
    end
    if #id > 200 or not string.match(id, '^[%w_%.%-:@]+$') then
        raise('INVALID', 'job id "' .. id .. '" must be 1-200 letters, digits or _ . - : @')
    end
    return id
end

local function parse_int(name, value, min, max)
    if type(value) ~= 'string' or not string.match(value, '^%-?%d+$') then
        raise('INVALID', name .. ' must be an integer, got "' .. tostring(value) .. '"')
    end
    local number = tonumber(value)
    if number < min or number > max then
        raise('INVALID', name .. ' must be between ' .. str(min) .. ' and ' .. str(max) .. ', got ' .. value)
    end
    return number
end

-- Name/value pairs from argv[first] on, checked against the allowed names.
local function options(argv, first, allowed)
    local result = {}
    if (#argv - first + 1) % 2 ~= 0 then
        raise('INVALID', 'options must come in name value pairs')
    end
    for index = first, #argv, 2 do
        local name = argv[index]
        if not allowed[name] then
            local names = {}
            for known in pairs(allowed) do table.insert(names, known) end
            table.sort(names)
            raise('INVALID', 'unknown option "' .. tostring(name) .. '" (known: ' .. table.concat(names, ', ') .. ')')
        end
        result[name] = argv[index + 1]
    end
    return result
end

local function is_json(text)
    local ok = pcall(cjson.decode, text)
    return ok
end

local function hash_to_table(flat)
    local result = {}
    for index = 1, #flat, 2 do
        result[flat[index]] = flat[index + 1]
    end
    return result
end

local function load_job(prefix, id)
    local flat = redis.call('HGETALL', job_key(prefix, id))
    if #flat == 0 then return nil end
    return hash_to_table(flat)
end

local function require_job(prefix, queue, id)
    local job = load_job(prefix, id)
    if not job then
        raise('NOTFOUND', 'no job "' .. full_id(queue, id) .. '" in queue "' .. queue .. '"')
    end
    return job
end

-- An integer setting from the meta hash; a missing or malformed value (written by hand) means the default.
local function setting(value, default)
    if type(value) == 'string' and string.match(value, '^%-?%d+$') then
        return tonumber(value)
    end
    return default
end

-- The queue's events_max setting, read once per call (reset by guarded()).
local events_max_cache = nil
-- The queue (prefix) whose payload limit was read in this call, and that limit (reset by guarded()).
local payload_limit_prefix, payload_limit_value = nil, nil

local function emit(prefix, job_id, job_type, from, to, at, message)
    if events_max_cache == nil then
        events_max_cache = setting(redis.call('HGET', key(prefix, 'meta'), 'events_max'), DEFAULT_EVENTS_MAX)
    end
    local max = events_max_cache
    if max <= 0 then return end
    local fields = {'id', job_id, 'type', job_type or '', 'from', from or '', 'to', to, 'at', str(at)}
    if message and message ~= '' then
        table.insert(fields, 'error')
        table.insert(fields, message)
    end
    redis.call('XADD', key(prefix, 'events'), 'MAXLEN', '~', max, '*', unpack(fields))
end

-- A queue's own event (queue_event "paused" or "resumed", no job id), in the same stream as the jobs' events, so
-- idle workers wake when a queue is resumed.
local function emit_queue_event(prefix, name, at)
    if events_max_cache == nil then
        events_max_cache = setting(redis.call('HGET', key(prefix, 'meta'), 'events_max'), DEFAULT_EVENTS_MAX)
    end
    if events_max_cache <= 0 then return end
    redis.call('XADD', key(prefix, 'events'), 'MAXLEN', '~', events_max_cache, '*', 'queue_event', name, 'at', str(at))
end

local function count(prefix, name, by)
    redis.call('HINCRBY', key(prefix, 'stats'), name, by or 1)
end

-- The pending jobs of one type, scored like the prioritized set, so pending(type) reads in run order.
local function type_index(prefix, job_type)
    return prefix .. ':pending:type:' .. (job_type or '')
end

-- Puts a job in the pending index: the list for priority 0, the prioritized sorted set otherwise (scored by
-- priority band and a sequence, for exact FIFO within a priority); and in the pending index of its type (scored by
-- priority band and time in ms, which is run order up to jobs pending in the same millisecond).
local function make_pending(prefix, id, priority, front, job_type, now)
    priority = tonumber(priority) or 0
    local band = (MAX_PRIORITY - priority) * PRIORITY_BAND
    if priority == 0 then
        if front then
            redis.call('LPUSH', key(prefix, 'pending'), id)
        else
            redis.call('RPUSH', key(prefix, 'pending'), id)
        end
    else
        local sequence = front and 0 or redis.call('HINCRBY', key(prefix, 'meta'), 'sequence', 1)
        redis.call('ZADD', key(prefix, 'prioritized'), str(band + sequence), id)
    end
    redis.call('ZADD', type_index(prefix, job_type), str(band + (front and 0 or now)), id)
end

-- Removes a job id from the index its status puts it in.
local function unindex(prefix, id, status, job_type)
    if status == 'pending' then
        redis.call('LREM', key(prefix, 'pending'), 1, id)
        redis.call('ZREM', key(prefix, 'prioritized'), id)
        redis.call('ZREM', type_index(prefix, job_type), id)
    elseif status == 'scheduled' then
        redis.call('ZREM', key(prefix, 'scheduled'), id)
    elseif status == 'retrying' then
        redis.call('ZREM', key(prefix, 'retry'), id)
    elseif status == 'processing' then
        redis.call('ZREM', key(prefix, 'active'), id)
    elseif FINISHED[status] then
        redis.call('ZREM', key(prefix, status), id)
    end
end

local function release_unique(prefix, queue, id, job)
    local unique = job.unique_key
    if unique and unique ~= '' then
        local unique_key = key(prefix, 'unique:' .. unique)
        if redis.call('GET', unique_key) == full_id(queue, id) then
            redis.call('DEL', unique_key)
        end
    end
end

-- Deletes a job's hash and its reference and uniqueness entries (not its status index entry).
local function delete_record(prefix, queue, id, job)
    if job then
        if job.reference_type and job.reference_type ~= '' then
            redis.call('SREM', key(prefix, 'ref:' .. job.reference_type .. ':' .. (job.reference_id or '')), full_id(queue, id))
        end
        release_unique(prefix, queue, id, job)
    end
    redis.call('DEL', job_key(prefix, id))
end

local function retention(prefix, status)
    local meta = redis.call('HMGET', key(prefix, 'meta'), 'keep_' .. status .. '_ms', 'keep_' .. status .. '_count')
    return setting(meta[1], DEFAULT_KEEP[status].ms), setting(meta[2], DEFAULT_KEEP[status].count)
end

-- Bounded retention: deletes at most TRIM_BATCH finished jobs that are too old or beyond the count to keep. The
-- job that just finished (`keep`) is left for the next call, so repeating the call that finished it still works.
local function trim_finished(prefix, queue, status, now, keep)
    local keep_ms, keep_count = retention(prefix, status)
    local index = key(prefix, status)
    local victims = {}
    if keep_ms >= 0 then
        victims = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. str(now - keep_ms), 'LIMIT', 0, TRIM_BATCH)
    end
    if keep_count >= 0 and #victims < TRIM_BATCH then
        local excess = redis.call('ZCARD', index) - #victims - keep_count
        if excess > 0 then
            local more = redis.call('ZRANGE', index, #victims, #victims + math.min(excess, TRIM_BATCH - #victims) - 1)
            for _, id in ipairs(more) do table.insert(victims, id) end
        end
    end
    local deleted = 0
    for _, id in ipairs(victims) do
        if id ~= keep then
            delete_record(prefix, queue, id, load_job(prefix, id))
            redis.call('ZREM', index, id)
            deleted = deleted + 1
        end
    end
    return deleted
end

-- Moves a job to a finished state (completed, failed or cancelled) and applies retention.
local function finish(prefix, queue, id, job, status, now, fields)
    unindex(prefix, id, job.status, job.type)
    local values = {'status', status, 'finished_at', str(now), 'updated_at', str(now)}
    for name, value in pairs(fields or {}) do
        table.insert(values, name)
        table.insert(values, value)
    end
    redis.call('HSET', job_key(prefix, id), unpack(values))
    redis.call('HDEL', job_key(prefix, id), 'cancel_requested')
    redis.call('ZADD', key(prefix, status), str(now), id)
    release_unique(prefix, queue, id, job)
    count(prefix, status)
    emit(prefix, full_id(queue, id), job.type, job.status, status, now, fields and fields.error)
    trim_finished(prefix, queue, status, now, id)
end

-- Checks a claimed job's lease token; returns an error reply, or nil when the caller holds the lease.
local function check_lease(queue, id, job, token)
    if job.status ~= 'processing' then
        raise('STATE', 'job "' .. full_id(queue, id) .. '" is ' .. tostring(job.status) .. ', not processing')
    end
    if job.lease ~= token then
        raise('STALE', 'the lease on job "' .. full_id(queue, id) .. '" was lost: it is now held by worker "'
            .. tostring(job.worker) .. '" (stale lease token ' .. tostring(token) .. ')')
    end
end

-- Why a job hash cannot be run, or nil when it is well formed. A job is addressed only by the queue of KEYS[1] and
-- the id it is indexed under: an "id" or "queue" field that names anything else (a forged hash pointing at another
-- queue's job) makes the hash malformed, never an address.
local function malformed(job, queue, id)
    if not KNOWN_STATUS[job.status] then
        return 'field "status" is "' .. tostring(job.status) .. '", not a job status'
    end
    if not job.type or job.type == '' then return 'field "type" is missing' end
    if not job.payload then return 'field "payload" is missing' end
    if not is_json(job.payload) then return 'field "payload" is not valid JSON' end
    for _, name in ipairs(INTEGER_FIELDS) do
        local value = job[name]
        if value and value ~= '' then
            local range = FIELD_RANGES[name]
            local number = string.match(value, '^%-?%d+$') and tonumber(value)
            if not number or number < range[1] or number > range[2] then
                return 'field "' .. name .. '" is "' .. value .. '", not an integer from ' .. str(range[1])
                    .. ' to ' .. str(range[2])
            end
        end
    end
    if job.id ~= full_id(queue, id) then
        return 'field "id" is "' .. tostring(job.id) .. '", not "' .. full_id(queue, id) .. '" (the key it is stored under)'
    end
    if job.queue ~= queue then
        return 'field "queue" is "' .. tostring(job.queue) .. '", not "' .. queue .. '"'
    end
    return nil
end

-- Runs a function body, turning raise() into an error reply.
local function guarded(body)
    return function(keys, args)
        events_max_cache = nil
        payload_limit_prefix = nil
        local ok, result = pcall(body, keys, args)
        if ok then return result end
        -- Redis may hand the error table of raise() back as its message string.
        if type(result) == 'table' and result.err then
            return redis.error_reply(result.err)
        elseif type(result) == 'string' and string.match(result, '^%u+ ') then
            return redis.error_reply(result)
        end
        error(result, 0)
    end
end

