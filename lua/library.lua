#!lua name=conveyor_2
-- Conveyor's Redis function library, protocol 2 (the library's name carries it: `conveyor_2`; protocol 1 was the
-- library `conveyor`, whose functions have the same names, so Redis refuses to hold both and a client of either
-- release cannot load its library over the other's without deleting it first): the shared helpers. Every state transition is one function, registered by
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
local TRIM_BATCH = 1000 -- finished jobs deleted per status per conveyor_trim / conveyor_reclaim call at most
local WAKE_MAX = 64 -- wake-up tokens kept per queue at most (one per job that became available)
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

-- Runs `command key items…` in calls of at most 1000 items (Lua's unpack has a limit of about 8000 values).
local function call_chunked(command, list, items)
    for first = 1, #items, 1000 do
        redis.call(command, list, unpack(items, first, math.min(#items, first + 999)))
    end
end

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

-- The queue settings a transition reads, from the meta hash, read with one HMGET per queue per call (the cache is
-- reset by guarded()). A missing field is false.
local META_FIELDS = {'events', 'events_max', 'paused', 'next_due', 'max_payload_bytes', 'type_index'}
local meta_cache = {}

local function queue_meta(prefix)
    local meta = meta_cache[prefix]
    if not meta then
        local values = redis.call('HMGET', key(prefix, 'meta'), unpack(META_FIELDS))
        meta = {}
        for index, name in ipairs(META_FIELDS) do meta[name] = values[index] end
        meta_cache[prefix] = meta
    end
    return meta
end

-- The stream's length limit when the queue records a transition to `to`, or nil when it records none. The meta
-- field events is "all" (the default), "finished" (only transitions to completed, failed, cancelled and removed,
-- which is what waiting for a result needs) or "none"; events_max 0 also means none.
local function recorded(prefix, to)
    local meta = queue_meta(prefix)
    local max = setting(meta.events_max, DEFAULT_EVENTS_MAX)
    if max <= 0 then return nil end
    local mode = meta.events or 'all'
    if mode == 'none' or (mode == 'finished' and not (FINISHED[to] or to == 'removed')) then return nil end
    return max
end

local function emit(prefix, job_id, job_type, from, to, at, message)
    local max = recorded(prefix, to)
    if not max then return end
    local fields = {'id', job_id, 'type', job_type or '', 'from', from or '', 'to', to, 'at', str(at)}
    if message and message ~= '' then
        table.insert(fields, 'error')
        table.insert(fields, message)
    end
    redis.call('XADD', key(prefix, 'events'), 'MAXLEN', '~', max, '*', unpack(fields))
end

-- One stream entry for several jobs that made the same transition in one call: "ids" and "types" are the full ids
-- and the types, space-separated, in the same order (neither can hold a space). One job gets the one-job form.
-- events_max bounds the job transitions kept, not the entries: an entry of n jobs trims the stream to about
-- events_max / n entries (approximately, whole stream nodes at a time).
-- An entry names at most EVENT_BATCH jobs (a larger batch writes several), so that one big batch trims the stream
-- to about its own events_max transitions, not to a handful of entries.
local EVENT_BATCH = 100

local function emit_many(prefix, ids, types, from, to, at)
    if #ids == 0 then return end
    if #ids == 1 then return emit(prefix, ids[1], types[1], from, to, at) end
    local max = recorded(prefix, to)
    if not max then return end
    for first = 1, #ids, EVENT_BATCH do
        local last = math.min(#ids, first + EVENT_BATCH - 1)
        redis.call('XADD', key(prefix, 'events'), 'MAXLEN', '~', math.max(1, math.ceil(max / (last - first + 1))), '*',
            'ids', table.concat(ids, ' ', first, last), 'types', table.concat(types, ' ', first, last),
            'from', from or '', 'to', to, 'at', str(at))
    end
end

-- A queue's own event (queue_event "paused" or "resumed", no job id), in the same stream as the jobs' events.
local function emit_queue_event(prefix, name, at)
    local max = recorded(prefix, 'queue')
    if not max then return end
    redis.call('XADD', key(prefix, 'events'), 'MAXLEN', '~', max, '*', 'queue_event', name, 'at', str(at))
end

-- Wakes idle workers: one token per job that became available (at most WAKE_MAX kept) in the list
-- <prefix>:wake, which idle workers block on (BLPOP); Redis hands each token to one waiter. A claim that finds the
-- queue empty deletes the list, so a token always means a job may be there.
local function wake(prefix, jobs)
    if jobs <= 0 then return end
    local tokens = {}
    for index = 1, math.min(jobs, WAKE_MAX) do tokens[index] = '1' end
    local length = redis.call('RPUSH', key(prefix, 'wake'), unpack(tokens))
    if length > WAKE_MAX then redis.call('LTRIM', key(prefix, 'wake'), -WAKE_MAX, -1) end
end

-- The meta field next_due holds the earliest time at which a scheduled or retrying job may fall due: a lower
-- bound (removing such a job leaves it in place), "none" when there is none, missing when unknown. Claims promote
-- only once it has passed, so a claim costs O(1) while nothing is due. Returns true when it was lowered (then idle
-- workers are woken, so that they learn the earlier time).
-- The earliest time in the scheduled and retry sets, stored as next_due ("none" when both are empty).
local function compute_next_due(prefix)
    local due = nil
    for _, name in ipairs({'scheduled', 'retry'}) do
        local first = redis.call('ZRANGE', key(prefix, name), 0, 0, 'WITHSCORES')
        if first[2] then
            local at = tonumber(first[2])
            if not due or at < due then due = at end
        end
    end
    local meta = queue_meta(prefix)
    meta.next_due = due and str(due) or 'none'
    redis.call('HSET', key(prefix, 'meta'), 'next_due', meta.next_due)
    return due
end

local function lower_next_due(prefix, at)
    local meta = queue_meta(prefix)
    if not meta.next_due then
        compute_next_due(prefix)
        wake(prefix, 1)
        return true
    end
    local current = tonumber(meta.next_due)
    if not current or at < current then
        meta.next_due = str(at)
        redis.call('HSET', key(prefix, 'meta'), 'next_due', meta.next_due)
        wake(prefix, 1)
        return true
    end
    return false
end

-- The throughput history: the counters listed below are also counted per minute, in one hash per hour,
-- <prefix>:history:<hour> with fields <minute>:<counter> (minutes and hours since the epoch by Redis TIME), which
-- expires 25 hours after its first write, so any client can draw the last 24 hours. A call gathers what it counts
-- and flush_history (run by guarded() at the end of every call) writes it: one HINCRBY per counter, however many
-- jobs it counted one by one (the failures of a report, the expired leases of a reclaim), and EXPIRE NX only when
-- a field is new (counters only grow, so HINCRBY answering the increment itself means a new field; a new hash has
-- only new fields): about once per counter and minute, not once per call.
local HISTORY_COUNTERS = {'enqueued', 'started', 'completed', 'failed', 'retried', 'stalled', 'cancelled'}
local HISTORY_KEPT = {
    enqueued = true, started = true, completed = true, failed = true, retried = true, stalled = true, cancelled = true,
}
local HISTORY_TTL_S = 90000
local history_counts = {} -- prefix -> {now = ms or nil, [counter] = n}; reset by guarded()

-- Adds `by` (default 1) to the counter `name` of the queue's stats hash and, for the counters of the history, to
-- the current minute's (written at the end of the call). `now` is the call's Redis TIME, when the caller has it.
local function count(prefix, name, by, now)
    by = by or 1
    redis.call('HINCRBY', key(prefix, 'stats'), name, by)
    if HISTORY_KEPT[name] then
        local counts = history_counts[prefix]
        if not counts then
            counts = {}
            history_counts[prefix] = counts
        end
        counts[name] = (counts[name] or 0) + by
        counts.now = counts.now or now
    end
end

local function flush_history()
    for prefix, counts in pairs(history_counts) do
        local minute = math.floor((counts.now or now_ms()) / 60000)
        local hash = key(prefix, 'history:' .. str(math.floor(minute / 60)))
        local field, fresh = str(minute) .. ':', false
        for _, name in ipairs(HISTORY_COUNTERS) do
            local by = counts[name]
            if by and redis.call('HINCRBY', hash, field .. name, by) == by then fresh = true end
        end
        if fresh then redis.call('EXPIRE', hash, HISTORY_TTL_S, 'NX') end
    end
    history_counts = {}
end

-- The pending jobs of one type with a priority other than 0 (and, from before version 2 of the layout, of any
-- priority), scored like the prioritized set, so pending(type) reads in run order.
local function type_index(prefix, job_type)
    return prefix .. ':pending:type:' .. (job_type or '')
end

-- The pending jobs of one type with priority 0, in run order: a list in the same order as <prefix>:pending.
local function type_list(prefix, job_type)
    return prefix .. ':pending:type:' .. (job_type or '') .. ':fifo'
end

-- Whether the queue keeps the pending index by type (meta field type_index = 1; off by default: it costs about
-- 40 bytes and one list push and pop per job). conveyor_set_type_index turns it on (building it) and off.
local function indexes_types(prefix)
    return queue_meta(prefix).type_index == '1'
end

-- Puts a job in the pending index: the list for priority 0, the prioritized sorted set otherwise (scored by
-- priority band and a sequence, for exact FIFO within a priority); and, when the queue indexes types, in the
-- pending index of its type (the list of its type for priority 0, else the sorted set of its type, scored by band
-- and time in ms). With `pushes` (from new_pushes), a priority-0 job at the back is gathered for flush_pushes
-- instead: one RPUSH per list for a whole batch. Does not wake.
local function make_pending(prefix, id, priority, front, job_type, now, pushes)
    priority = tonumber(priority) or 0
    local by_type = indexes_types(prefix)
    if priority == 0 then
        if pushes and not front then
            table.insert(pushes.ids, id)
            if by_type then
                local group = pushes.types[job_type or '']
                if not group then
                    group = {}
                    pushes.types[job_type or ''] = group
                end
                table.insert(group, id)
            end
            return
        end
        local push = front and 'LPUSH' or 'RPUSH'
        redis.call(push, key(prefix, 'pending'), id)
        if by_type then redis.call(push, type_list(prefix, job_type), id) end
    else
        local band = (MAX_PRIORITY - priority) * PRIORITY_BAND
        local sequence = front and 0 or redis.call('HINCRBY', key(prefix, 'meta'), 'sequence', 1)
        redis.call('ZADD', key(prefix, 'prioritized'), str(band + sequence), id)
        if by_type then redis.call('ZADD', type_index(prefix, job_type), str(band + (front and 0 or now)), id) end
    end
end

local function new_pushes()
    return {ids = {}, types = {}}
end

-- RPUSHes `items` to `list`, at most 1000 per call.
local function push_all(list, items)
    call_chunked('RPUSH', list, items)
end

-- Writes what make_pending gathered, in order.
local function flush_pushes(prefix, pushes)
    if #pushes.ids == 0 then return end
    push_all(key(prefix, 'pending'), pushes.ids)
    for job_type, ids in pairs(pushes.types) do
        push_all(type_list(prefix, job_type), ids)
    end
end

-- Removes a job id from the index its status puts it in.
local function unindex(prefix, id, status, job_type)
    if status == 'pending' then
        redis.call('LREM', key(prefix, 'pending'), 1, id)
        redis.call('ZREM', key(prefix, 'prioritized'), id)
        redis.call('LREM', type_list(prefix, job_type), 1, id)
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

-- Bounded retention, off the completion path: deletes at most `limit` finished jobs of one status that are too old
-- or beyond the count to keep, oldest first. Run by conveyor_trim and conveyor_reclaim (every worker's reclaim
-- loop), so a completion costs the same however many finished jobs are kept. Returns how many it deleted.
local function trim_finished(prefix, queue, status, now, limit)
    local keep_ms, keep_count = retention(prefix, status)
    local index = key(prefix, status)
    local victims = {}
    if keep_ms >= 0 then
        victims = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. str(now - keep_ms), 'LIMIT', 0, limit)
    end
    if keep_count >= 0 and #victims < limit then
        local excess = redis.call('ZCARD', index) - #victims - keep_count
        if excess > 0 then
            local more = redis.call('ZRANGE', index, #victims, #victims + math.min(excess, limit - #victims) - 1)
            for _, id in ipairs(more) do table.insert(victims, id) end
        end
    end
    if #victims == 0 then return 0 end
    local keys = {}
    for index_, id in ipairs(victims) do
        local job = redis.call('HMGET', job_key(prefix, id), 'reference_type', 'reference_id', 'unique_key')
        if (job[1] and job[1] ~= '') or (job[3] and job[3] ~= '') then
            delete_record(prefix, queue, id, {reference_type = job[1] or nil, reference_id = job[2] or nil,
                unique_key = job[3] or nil})
        end
        keys[index_] = job_key(prefix, id)
    end
    for first = 1, #keys, 1000 do
        redis.call('DEL', unpack(keys, first, math.min(#keys, first + 999)))
    end
    call_chunked('ZREM', index, victims)
    return #victims
end

-- Moves a job to a finished state (completed, failed or cancelled). Retention is applied later (trim_finished).
local function finish(prefix, queue, id, job, status, now, fields)
    unindex(prefix, id, job.status, job.type)
    local values = {'status', status, 'finished_at', str(now), 'updated_at', str(now)}
    for name, value in pairs(fields or {}) do
        table.insert(values, name)
        table.insert(values, value)
    end
    redis.call('HSET', job_key(prefix, id), unpack(values))
    if job.cancel_requested then redis.call('HDEL', job_key(prefix, id), 'cancel_requested') end
    redis.call('ZADD', key(prefix, status), str(now), id)
    release_unique(prefix, queue, id, job)
    count(prefix, status, 1, now)
    emit(prefix, full_id(queue, id), job.type, job.status, status, now, fields and fields.error)
end

-- Why the caller does not hold a claimed job's lease (an error text starting with its code), or nil when it does.
local function lease_problem(queue, id, job, token)
    if job.status ~= 'processing' then
        return 'STATE job "' .. full_id(queue, id) .. '" is ' .. tostring(job.status) .. ', not processing'
    end
    if job.lease ~= token then
        return 'STALE the lease on job "' .. full_id(queue, id) .. '" was lost: it is now held by worker "'
            .. tostring(job.worker) .. '" (stale lease token ' .. tostring(token) .. ')'
    end
    return nil
end

-- Raises the error of lease_problem(), if any.
local function check_lease(queue, id, job, token)
    local problem = lease_problem(queue, id, job, token)
    if problem then error({err = problem}) end
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
    -- id and queue are optional (enqueue does not write them: the key says both), but must not contradict the key.
    if job.id and job.id ~= full_id(queue, id) then
        return 'field "id" is "' .. tostring(job.id) .. '", not "' .. full_id(queue, id) .. '" (the key it is stored under)'
    end
    if job.queue and job.queue ~= queue then
        return 'field "queue" is "' .. tostring(job.queue) .. '", not "' .. queue .. '"'
    end
    return nil
end

-- Runs a function body, turning raise() into an error reply, and writes the history it counted.
local function guarded(body)
    return function(keys, args)
        meta_cache = {}
        history_counts = {}
        local ok, result = pcall(body, keys, args)
        if ok then
            flush_history()
            return result
        end
        -- Whatever was written before the error stays (and its counters in stats), so its history too; a failure
        -- here must not hide the body's error.
        pcall(flush_history)
        -- Redis may hand the error table of raise() back as its message string.
        if type(result) == 'table' and result.err then
            return redis.error_reply(result.err)
        elseif type(result) == 'string' and string.match(result, '^%u+ ') then
            return redis.error_reply(result)
        end
        error(result, 0)
    end
end

