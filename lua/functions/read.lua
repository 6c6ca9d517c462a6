-- conveyor_pending: reads pending jobs in run order, optionally of one type, in one call (read-only).
--
-- KEYS[1]  queue prefix
-- ARGV[1]  job type to keep, or "" for every type
-- ARGV[2]  how many matching jobs to skip (offset, default 0)
-- ARGV[3]  how many jobs to return at most (1…1000, default 100)
-- ARGV[4]  how many pending entries to examine at most (default 100000)
-- Reply    an array of jobs, each the flat field/value list of its hash (HGETALL form), in the order they will
--          run: priority above 0 first (higher first), then priority 0 oldest first, then priority below 0
local function pending_ids(prefix, from, count)
    -- The run order across the two pending structures, as one sequence: high band, list, low band.
    local prioritized, list = key(prefix, 'prioritized'), key(prefix, 'pending')
    local band = str(DEFAULT_BAND_START)
    local high = redis.call('ZRANGEBYSCORE', prioritized, '-inf', '(' .. band, 'LIMIT', from, count)
    local high_total = redis.call('ZCOUNT', prioritized, '-inf', '(' .. band)
    local ids = high
    if #ids < count then
        local list_from = math.max(0, from - high_total)
        local listed = redis.call('LRANGE', list, list_from, list_from + (count - #ids) - 1)
        for _, id in ipairs(listed) do table.insert(ids, id) end
        if #ids < count then
            local list_total = redis.call('LLEN', list)
            local low_from = math.max(0, from - high_total - list_total)
            local low = redis.call('ZRANGEBYSCORE', prioritized, band, '+inf', 'LIMIT', low_from, count - #ids)
            for _, id in ipairs(low) do table.insert(ids, id) end
        end
    end
    return ids
end

redis.register_function{
    function_name = 'conveyor_pending',
    flags = {'no-writes'},
    callback = guarded(function(keys, argv)
        local prefix = keys[1]
        queue_of(prefix)
        local wanted_type = argv[1] or ''
        local skip = argv[2] and parse_int('offset', argv[2], 0, 1000000000) or 0
        local limit = argv[3] and parse_int('limit', argv[3], 1, 1000) or 100
        local scan_limit = argv[4] and parse_int('scan limit', argv[4], 1, 10000000) or 100000
        local jobs = {}
        local position = 0
        local chunk = 200
        while #jobs < limit and position < scan_limit do
            local ids = pending_ids(prefix, position, math.min(chunk, scan_limit - position))
            if #ids == 0 then break end
            position = position + #ids
            for _, id in ipairs(ids) do
                if wanted_type == '' or redis.call('HGET', job_key(prefix, id), 'type') == wanted_type then
                    if skip > 0 then
                        skip = skip - 1
                    else
                        local flat = redis.call('HGETALL', job_key(prefix, id))
                        if #flat > 0 then table.insert(jobs, flat) end
                        if #jobs >= limit then break end
                    end
                end
            end
            chunk = math.min(chunk * 2, 5000)
        end
        return jobs
    end),
}
