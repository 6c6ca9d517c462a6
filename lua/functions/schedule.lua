-- Recurring schedules. Each schedule lives with the queue it enqueues into, so firing it (moving next_run_at and
-- creating the job) is one atomic call in that queue's slot:
--   <prefix>:schedule:<name>   hash: name, definition (JSON, written by the client), next_run_at, last_run_at,
--                              paused, updated_at
--   <prefix>:schedules         zset: schedule names by next_run_at (paused ones are not in it)
-- The global set <namespace>:schedules (written by clients, outside the functions) lists "<queue>/<name>".

local function schedule_key(prefix, name)
    return prefix .. ':schedule:' .. name
end

local function check_schedule_name(name)
    if type(name) ~= 'string' or #name == 0 or #name > 100 or not string.match(name, '^[%w_%.%-:]+$') then
        raise('INVALID', 'schedule name "' .. tostring(name) .. '" must be 1-100 letters, digits or _ . - :')
    end
    return name
end

-- conveyor_schedule_upsert: creates or updates a schedule, idempotently.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  schedule name
-- ARGV[2]  definition: JSON text (the client's; compared as text)
-- ARGV[3]  next_run_at (epoch ms) to use when the schedule is new or its definition changed
-- Reply    {"created" | "updated" | "unchanged", next_run_at}. An unchanged definition keeps its next_run_at, so
--          every node can declare the same schedules at start.
redis.register_function('conveyor_schedule_upsert', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local name = check_schedule_name(argv[1])
    local definition = argv[2]
    if type(definition) ~= 'string' or not is_json(definition) then
        raise('INVALID', 'the schedule definition is not valid JSON')
    end
    -- Its jobs must pass the checks conveyor_schedule_fire makes, or every fire would be refused.
    local decoded = cjson.decode(definition)
    if type(decoded) ~= 'table' then
        raise('INVALID', 'the schedule definition must be a JSON object')
    end
    local opts = {}
    for _, option in ipairs({'priority', 'max_retries', 'timeout_ms'}) do
        if type(decoded[option]) == 'number' then opts[option] = string.format('%d', decoded[option]) end
    end
    local ok, problem = pcall(check_enqueue, queue, name .. '@0', decoded.type, decoded.payload, opts, now_ms(), prefix)
    if not ok then
        local message = type(problem) == 'table' and problem.err or tostring(problem)
        if not string.match(message, '^INVALID ') then error(problem, 0) end
        raise('INVALID', 'the schedule\'s jobs would be refused: ' .. string.sub(message, 9))
    end
    local next_run_at = parse_int('next_run_at', argv[3], -1, 2 ^ 50)
    local skey = schedule_key(prefix, name)
    local current = redis.call('HMGET', skey, 'definition', 'next_run_at', 'paused')
    if current[1] == definition then
        return {'unchanged', tonumber(current[2]) or -1}
    end
    local outcome = current[1] and 'updated' or 'created'
    redis.call('HSET', skey, 'name', name, 'definition', definition, 'next_run_at', str(next_run_at),
        'updated_at', str(now_ms()))
    if current[3] == '1' or next_run_at < 0 then
        redis.call('ZREM', key(prefix, 'schedules'), name)
    else
        redis.call('ZADD', key(prefix, 'schedules'), str(next_run_at), name)
    end
    return {outcome, next_run_at}
end))

-- conveyor_schedule_remove: deletes a schedule (jobs it already created stay).
--
-- KEYS[1]  queue prefix
-- ARGV[1]  schedule name
-- Reply    1 when it existed, 0 otherwise
redis.register_function('conveyor_schedule_remove', guarded(function(keys, argv)
    local prefix = keys[1]
    queue_of(prefix)
    local name = check_schedule_name(argv[1])
    redis.call('ZREM', key(prefix, 'schedules'), name)
    return redis.call('DEL', schedule_key(prefix, name))
end))

-- conveyor_schedule_pause: stops a schedule from firing until resumed.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  schedule name
-- ARGV[2]  "1" to pause, "0" to resume
-- ARGV[3]  with "0": the next_run_at (epoch ms) to resume with (fire times while paused are not made up)
-- Reply    "paused" or "resumed"; NOTFOUND for an unknown schedule
redis.register_function('conveyor_schedule_pause', guarded(function(keys, argv)
    local prefix = keys[1]
    queue_of(prefix)
    local name = check_schedule_name(argv[1])
    local skey = schedule_key(prefix, name)
    if redis.call('EXISTS', skey) == 0 then
        raise('NOTFOUND', 'no schedule "' .. name .. '"')
    end
    if argv[2] == '1' then
        redis.call('HSET', skey, 'paused', '1')
        redis.call('ZREM', key(prefix, 'schedules'), name)
        return 'paused'
    elseif argv[2] == '0' then
        local next_run_at = parse_int('next_run_at', argv[3], -1, 2 ^ 50)
        redis.call('HDEL', skey, 'paused')
        redis.call('HSET', skey, 'next_run_at', str(next_run_at))
        if next_run_at >= 0 then redis.call('ZADD', key(prefix, 'schedules'), str(next_run_at), name) end
        return 'resumed'
    end
    raise('INVALID', 'the second argument must be 1 (pause) or 0 (resume)')
end))

-- conveyor_schedule_fire: fires a due schedule exactly once per fire time, whoever calls it and however often.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  schedule name
-- ARGV[2]  the next_run_at the caller read (compare-and-set: nothing happens when it changed meanwhile)
-- ARGV[3]  the new next_run_at (-1 when the schedule has ended)
-- ARGV[4]  job type
-- ARGV[5]  job payload (JSON)
-- ARGV[6]  the number K of option pairs for the jobs, then K pairs as for conveyor_enqueue (priority,
--          max_retries, timeout_ms)
-- ARGV[…]  the fire times to run (epoch ms), oldest first; each makes the job "<name>@<fire time>"
-- Reply    {"fired", job ids…}; {"stale"} when another caller fired it first; {"early", now} when a fire time is
--          later than Redis TIME (the caller's clock is ahead): nothing changes, so no clock but Redis's can fire a
--          schedule early
-- Fires one schedule (argv as for conveyor_schedule_fire) into `batch` (events, list pushes, counts), which the
-- caller writes with flush_fires; raises INVALID or NOTFOUND before writing anything for this schedule.
local function fire_one(prefix, queue, argv, now, batch)
    local name = check_schedule_name(argv[1])
    local expected = parse_int('expected next_run_at', argv[2], -1, 2 ^ 50)
    local next_run_at = parse_int('next_run_at', argv[3], -1, 2 ^ 50)
    local pairs_count = parse_int('option pair count', argv[6], 0, 10)
    local opts = {}
    for index = 0, pairs_count - 1 do
        local option = argv[7 + index * 2]
        if option ~= 'priority' and option ~= 'max_retries' and option ~= 'timeout_ms' then
            raise('INVALID', 'unknown job option "' .. tostring(option) .. '" for a schedule')
        end
        opts[option] = argv[8 + index * 2]
    end
    local jobs = {}
    for index = 7 + pairs_count * 2, #argv do
        local fire = parse_int('fire time', argv[index], 0, 2 ^ 50)
        if fire > now then
            return {'early', str(now)}
        end
        table.insert(jobs, check_enqueue(queue, name .. '@' .. str(fire), argv[4], argv[5], opts, now, prefix))
    end
    local skey = schedule_key(prefix, name)
    local stored = redis.call('HMGET', skey, 'next_run_at', 'paused')
    if not stored[1] then
        raise('NOTFOUND', 'no schedule "' .. name .. '"')
    end
    if tonumber(stored[1]) ~= expected or stored[2] == '1' then
        return {'stale'}
    end
    local reply = {'fired'}
    for _, job in ipairs(jobs) do
        local outcome = enqueue_checked(prefix, queue, job, now, batch.events, batch.pushes)
        if outcome[1] == 'created' then
            batch.created = batch.created + 1
            if outcome[3] == 'pending' then batch.pending = batch.pending + 1 end
        end
        table.insert(reply, outcome[2])
    end
    local fields = {'next_run_at', str(next_run_at)}
    if #jobs > 0 then
        table.insert(fields, 'last_run_at')
        table.insert(fields, argv[#argv])
    end
    redis.call('HSET', skey, unpack(fields))
    if next_run_at >= 0 then
        redis.call('ZADD', key(prefix, 'schedules'), str(next_run_at), name)
    else
        redis.call('ZREM', key(prefix, 'schedules'), name)
    end
    return reply
end

local function new_fires()
    return {events = {}, pushes = new_pushes(), created = 0, pending = 0}
end

-- Writes what fire_one gathered: list pushes, one counter update, one event entry per status, the wake-ups.
local function flush_fires(prefix, batch, now)
    flush_pushes(prefix, batch.pushes)
    if batch.created > 0 then count(prefix, 'enqueued', batch.created, now) end
    emit_created(prefix, batch.events, now)
    wake(prefix, batch.pending)
end

redis.register_function('conveyor_schedule_fire', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local now = now_ms()
    local batch = new_fires()
    local reply = fire_one(prefix, queue, argv, now, batch)
    flush_fires(prefix, batch, now)
    return reply
end))

-- conveyor_schedule_fire_many: fires many schedules of one queue in one call (a leader's tick), each exactly as
-- conveyor_schedule_fire would, with one counter update, one event entry per status and one list push for all.
--
-- KEYS[1]  queue prefix
-- ARGV[1]  number N of schedules (1…1000), then for each: the number L of its arguments, then its L arguments as
--          for conveyor_schedule_fire (name, expected next_run_at, new next_run_at, type, payload, K, K option
--          pairs, fire times…)
-- Reply    one reply per schedule, in order: as conveyor_schedule_fire's ({"fired", ids…}, {"stale"},
--          {"early", now}), or the error text ("INVALID …", "NOTFOUND …") for that schedule alone, which changed
--          nothing of it (the others fire)
redis.register_function('conveyor_schedule_fire_many', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local total = parse_int('the schedule count', argv[1], 1, 1000)
    local slices = {}
    local index = 2
    for position = 1, total do
        local length = parse_int('the argument count of schedule ' .. position, argv[index], 6, 10000)
        if index + length > #argv then
            raise('INVALID', 'schedule ' .. position .. ' announces ' .. length .. ' arguments; fewer are left')
        end
        slices[position] = {unpack(argv, index + 1, index + length)}
        index = index + 1 + length
    end
    if index <= #argv then
        raise('INVALID', 'more arguments than the ' .. total .. ' schedules announced')
    end
    local now = now_ms()
    local batch = new_fires()
    local replies = {}
    for position, slice in ipairs(slices) do
        local ok, reply = pcall(fire_one, prefix, queue, slice, now, batch)
        if ok then
            replies[position] = reply
        elseif type(reply) == 'table' and reply.err then
            replies[position] = reply.err
        elseif type(reply) == 'string' and string.match(reply, '^%u+ ') then
            replies[position] = reply
        else
            error(reply, 0)
        end
    end
    flush_fires(prefix, batch, now)
    return replies
end))
