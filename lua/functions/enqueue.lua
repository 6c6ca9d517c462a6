-- conveyor_enqueue: creates one job (pending, or scheduled when it runs later).
--
-- KEYS[1]  queue prefix, e.g. conveyor:{emails}
-- ARGV[1]  job id within the queue (e.g. order-42; "emails/order-42" is accepted too); enqueuing an id that
--          exists creates nothing (producers may retry safely)
-- ARGV[2]  job type, e.g. send_email
-- ARGV[3]  payload: JSON text
-- ARGV[4…] options as name value pairs:
--          run_at (epoch ms) | delay_ms; priority (-100…100, higher runs first, default 0);
--          max_retries (default 3); timeout_ms; reference_type + reference_id; unique_key;
--          max_payload_bytes (a lower limit for this call only; the queue's limit is the meta field
--          max_payload_bytes, default 1048576, which no call can raise)
-- Reply    {outcome, full id, status}: outcome "created", "exists" (same id already there) or "duplicate" (a live
--          job holds unique_key; the id and status are that job's)

local ENQUEUE_OPTIONS = {
    run_at = true, delay_ms = true, priority = true, max_retries = true, timeout_ms = true,
    reference_type = true, reference_id = true, unique_key = true, max_payload_bytes = true,
}

-- Whether text is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF); ASCII takes one find.
local function is_utf8(text)
    if not string.find(text, '[\128-\255]') then return true end
    local index, length = 1, #text
    while index <= length do
        local byte = string.byte(text, index)
        local extra, low, high
        if byte < 0x80 then extra = 0
        elseif byte >= 0xC2 and byte <= 0xDF then extra, low, high = 1, 0x80, 0xBF
        elseif byte == 0xE0 then extra, low, high = 2, 0xA0, 0xBF
        elseif byte == 0xED then extra, low, high = 2, 0x80, 0x9F
        elseif byte >= 0xE1 and byte <= 0xEF then extra, low, high = 2, 0x80, 0xBF
        elseif byte == 0xF0 then extra, low, high = 3, 0x90, 0xBF
        elseif byte >= 0xF1 and byte <= 0xF3 then extra, low, high = 3, 0x80, 0xBF
        elseif byte == 0xF4 then extra, low, high = 3, 0x80, 0x8F
        else return false, index - 1 end
        for offset = 1, extra do
            local next_byte = string.byte(text, index + offset)
            if not next_byte then return false, index - 1 end
            if offset == 1 then
                if next_byte < low or next_byte > high then return false, index - 1 end
            elseif next_byte < 0x80 or next_byte > 0xBF then
                return false, index - 1
            end
        end
        index = index + extra + 1
    end
    return true
end

-- The queue's payload limit (meta field max_payload_bytes).
local function queue_payload_limit(prefix)
    return setting(queue_meta(prefix).max_payload_bytes, DEFAULT_MAX_PAYLOAD)
end

-- Checks one job's arguments; returns what enqueue_checked needs. Raises INVALID on bad input.
local function check_enqueue(queue, id, job_type, payload, opts, now, prefix)
    id = local_id(queue, id)
    if type(job_type) ~= 'string' or #job_type == 0 or #job_type > 128 or not string.match(job_type, '^[%w_%.%-:/]+$') then
        raise('INVALID', 'job type "' .. tostring(job_type) .. '" must be 1-128 letters, digits or _ . - : /')
    end
    local max_payload = queue_payload_limit(prefix)
    if opts.max_payload_bytes then
        max_payload = math.min(max_payload, parse_int('max_payload_bytes', opts.max_payload_bytes, 1, 536870912))
    end
    if type(payload) ~= 'string' then
        raise('INVALID', 'the payload is missing')
    end
    if #payload > max_payload then
        raise('INVALID', 'the payload is ' .. #payload .. ' bytes, over the limit of ' .. max_payload .. ' bytes of queue "'
            .. queue .. '"; store large data elsewhere and pass a reference (an admin sets the limit: meta field max_payload_bytes)')
    end
    local valid, offset = is_utf8(payload)
    if not valid then
        raise('INVALID', 'the payload is not valid UTF-8 (at byte ' .. offset .. '); JSON text must be UTF-8')
    end
    if not is_json(payload) then
        raise('INVALID', 'the payload is not valid JSON')
    end
    local run_at = now
    if opts.run_at and opts.delay_ms then
        raise('INVALID', 'give run_at or delay_ms, not both')
    elseif opts.delay_ms then
        run_at = now + parse_int('delay_ms', opts.delay_ms, 0, MAX_FUTURE_MS)
    elseif opts.run_at then
        run_at = math.max(now, parse_int('run_at', opts.run_at, 0, now + MAX_FUTURE_MS))
    end
    local checked = {
        id = id, type = job_type, payload = payload, run_at = run_at,
        priority = opts.priority and parse_int('priority', opts.priority, unpack(FIELD_RANGES.priority)) or 0,
        max_retries = opts.max_retries and parse_int('max_retries', opts.max_retries, unpack(FIELD_RANGES.max_retries))
            or DEFAULT_MAX_RETRIES,
        timeout_ms = opts.timeout_ms and parse_int('timeout_ms', opts.timeout_ms, unpack(FIELD_RANGES.timeout_ms)) or 0,
    }
    if (opts.reference_type or '') ~= '' or (opts.reference_id or '') ~= '' then
        local ref_type, ref_id = opts.reference_type or '', opts.reference_id or ''
        if #ref_type == 0 or #ref_type > 64 or not string.match(ref_type, '^[%w_%.%-]+$') then
            raise('INVALID', 'reference_type "' .. ref_type .. '" must be 1-64 letters, digits or _ . -')
        end
        if #ref_id == 0 or #ref_id > 256 or string.match(ref_id, '%c') then
            raise('INVALID', 'reference_id must be 1-256 characters without control characters')
        end
        checked.reference_type, checked.reference_id = ref_type, ref_id
    end
    if opts.unique_key then
        if #opts.unique_key == 0 or #opts.unique_key > 256 or string.match(opts.unique_key, '%c') then
            raise('INVALID', 'unique_key must be 1-256 characters without control characters')
        end
        checked.unique_key = opts.unique_key
    end
    return checked
end

-- Writes one checked job; returns {outcome, full id, status}. With `events` (a table), the event is added to it
-- for one entry per status written by the caller (emit_created), else it is written at once. Only fields that differ from their defaults are
-- written (id and queue are the key's; retry_count, attempts and stalls 0; max_retries 3; priority and timeout_ms
-- 0; run_at and updated_at are created_at when missing). The caller wakes workers for the pending jobs created.
local function enqueue_checked(prefix, queue, job, now, events, pushes)
    local id = job.id
    local existing = redis.call('HGET', job_key(prefix, id), 'status')
    if existing then
        return {'exists', full_id(queue, id), existing}
    end
    if job.unique_key then
        local unique_key = key(prefix, 'unique:' .. job.unique_key)
        local holder = redis.call('GET', unique_key)
        if holder then
            local holder_queue, holder_id = string.match(holder, '^([^/]+)/(.+)$')
            local holder_status = holder_id and redis.call('HGET', job_key(prefix, holder_id), 'status')
            if holder_status and not FINISHED[holder_status] then
                return {'duplicate', holder, holder_status}
            end
        end
        redis.call('SET', unique_key, full_id(queue, id))
    end
    local status = job.run_at > now and 'scheduled' or 'pending'
    local fields = {'type', job.type, 'status', status, 'payload', job.payload, 'created_at', str(now)}
    if job.run_at ~= now then table.insert(fields, 'run_at'); table.insert(fields, str(job.run_at)) end
    if job.max_retries ~= DEFAULT_MAX_RETRIES then
        table.insert(fields, 'max_retries'); table.insert(fields, str(job.max_retries))
    end
    if job.priority ~= 0 then table.insert(fields, 'priority'); table.insert(fields, str(job.priority)) end
    if job.timeout_ms ~= 0 then table.insert(fields, 'timeout_ms'); table.insert(fields, str(job.timeout_ms)) end
    if job.reference_type then
        table.insert(fields, 'reference_type'); table.insert(fields, job.reference_type)
        table.insert(fields, 'reference_id'); table.insert(fields, job.reference_id)
        redis.call('SADD', key(prefix, 'ref:' .. job.reference_type .. ':' .. job.reference_id), full_id(queue, id))
    end
    if job.unique_key then
        table.insert(fields, 'unique_key'); table.insert(fields, job.unique_key)
    end
    redis.call('HSET', job_key(prefix, id), unpack(fields))
    if status == 'scheduled' then
        redis.call('ZADD', key(prefix, 'scheduled'), str(job.run_at), id)
        lower_next_due(prefix, job.run_at)
    else
        make_pending(prefix, id, job.priority, false, job.type, now, pushes)
    end
    if events then
        events[status] = events[status] or {ids = {}, types = {}}
        table.insert(events[status].ids, full_id(queue, id))
        table.insert(events[status].types, job.type)
    else
        emit(prefix, full_id(queue, id), job.type, '', status, now)
    end
    return {'created', full_id(queue, id), status}
end

-- Writes the events gathered by enqueue_checked: one entry per status.
local function emit_created(prefix, events, now)
    for _, status in ipairs({'pending', 'scheduled'}) do
        if events[status] then emit_many(prefix, events[status].ids, events[status].types, '', status, now) end
    end
end

redis.register_function('conveyor_enqueue', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local now = now_ms()
    -- Said before the options are read: a call without a payload would otherwise get "options must come in name
    -- value pairs".
    if argv[2] == nil then raise('INVALID', 'the job type is missing (ARGV[2])') end
    if argv[3] == nil then raise('INVALID', 'the payload is missing (ARGV[3]: JSON text, e.g. {})') end
    local job = check_enqueue(queue, argv[1], argv[2], argv[3], options(argv, 4, ENQUEUE_OPTIONS), now, prefix)
    local reply = enqueue_checked(prefix, queue, job, now)
    if reply[1] == 'created' then
        count(prefix, 'enqueued', 1, now)
        if reply[3] == 'pending' then wake(prefix, 1) end
    end
    return reply
end))

-- Reads and checks the jobs of conveyor_enqueue_many / conveyor_check_many; raises INVALID naming the job.
local function check_many(prefix, argv, now)
    local queue = queue_of(prefix)
    local total = parse_int('the job count', argv[1], 1, 10000)
    local jobs = {}
    local index = 2
    for position = 1, total do
        local pairs_text = argv[index + 3]
        if not argv[index + 2] or type(pairs_text) ~= 'string' or not string.match(pairs_text, '^%d+$') then
            raise('INVALID', 'job ' .. position .. ': expected id, type, payload and an option pair count')
        end
        local pairs_count = tonumber(pairs_text)
        local opts = {}
        for option = 0, pairs_count - 1 do
            local name = argv[index + 4 + option * 2]
            if not ENQUEUE_OPTIONS[name] then
                raise('INVALID', 'job ' .. position .. ': unknown option "' .. tostring(name) .. '"')
            end
            opts[name] = argv[index + 5 + option * 2]
        end
        local ok, checked = pcall(check_enqueue, queue, argv[index], argv[index + 1], argv[index + 2], opts, now, prefix)
        if not ok then
            local message = type(checked) == 'table' and checked.err or tostring(checked)
            if not string.match(message, '^INVALID ') then error(checked, 0) end
            raise('INVALID', 'job ' .. position .. ': ' .. string.sub(message, 9))
        end
        table.insert(jobs, checked)
        index = index + 4 + pairs_count * 2
    end
    if index <= #argv then
        raise('INVALID', 'more arguments than the ' .. total .. ' jobs announced')
    end
    return jobs
end

-- conveyor_check_many: checks jobs as conveyor_enqueue_many would, and writes nothing (for a producer that wants all
-- of a large set or nothing: check every batch first, then enqueue).
--
-- KEYS[1]  queue prefix
-- ARGV     as for conveyor_enqueue_many
-- Reply    the number of jobs checked; INVALID naming the first bad job otherwise
redis.register_function{function_name = 'conveyor_check_many', flags = {'no-writes'},
    callback = guarded(function(keys, argv)
        return #check_many(keys[1], argv, now_ms())
    end)}

-- conveyor_enqueue_many: creates many jobs atomically; when any job is invalid, nothing is written.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  number of jobs N (1…10000)
-- ARGV[2…] for each job: id, type, payload, the number K of option pairs, then K name value pairs (as for
--          conveyor_enqueue)
-- Reply    one {outcome, full id, status} per job, in order
redis.register_function('conveyor_enqueue_many', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local now = now_ms()
    local jobs = check_many(prefix, argv, now)
    local replies, created, pending, events, pushes = {}, 0, 0, {}, new_pushes()
    for _, job in ipairs(jobs) do
        local reply = enqueue_checked(prefix, queue, job, now, events, pushes)
        if reply[1] == 'created' then
            created = created + 1
            if reply[3] == 'pending' then pending = pending + 1 end
        end
        table.insert(replies, reply)
    end
    flush_pushes(prefix, pushes)
    if created > 0 then count(prefix, 'enqueued', created, now) end
    emit_created(prefix, events, now)
    wake(prefix, pending)
    return replies
end))
