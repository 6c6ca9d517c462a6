-- conveyor_report: a worker's one round trip per batch: records the outcomes of jobs it ran (completions and
-- failed attempts, each under its lease), then claims jobs for its free slots, as conveyor_claim does.
--
-- KEYS[1]  queue prefix (every outcome is of a job of this queue)
-- ARGV[1]  worker id
-- ARGV[2]  lease in ms for the jobs claimed
-- ARGV[3]  how many jobs to claim (0…1000; 0 claims nothing and does not promote beyond what is due)
-- ARGV[4]  number N of outcomes (0…1000), then N outcomes, each one of:
--            "completed", job id, lease token, result (JSON text, or empty)
--            "failed", job id, lease token, error message, retry (0 or 1), delay_ms (empty: backoff),
--              backoff_base_ms, backoff_cap_ms, jitter, max_retries (each empty for its default; see conveyor_fail)
-- Reply    {statuses, jobs, next_due_ms, paused, now_ms}: statuses has one entry per outcome, in order: the job's new
--          status ("completed", "retrying", "failed", "cancelled"), or an error text starting with its code
--          (STALE, STATE, NOTFOUND, INVALID) for that outcome alone, which changed nothing; repeating a call
--          with the same tokens replies the same statuses and changes nothing. next_due_ms and paused are as for
--          conveyor_claim; jobs too, except that each job is one string, its field names and values joined by
--          NUL bytes ("type\0send_email\0status\0processing\0…"), unless a value holds a NUL (then it is the
--          list, as from conveyor_claim). now_ms is Redis TIME, so that a worker can wait for next_due_ms by
--          Redis's clock rather than its own.
--          Completions are written together: one ZREM from active, one ZADD to completed, one counter update and
--          one event entry (of the multi-job form when there are several).
redis.register_function('conveyor_report', guarded(function(keys, argv)
    local prefix = keys[1]
    local queue = queue_of(prefix)
    local worker = argv[1]
    local lease_ms = check_worker(worker, argv[2])
    local wanted = parse_int('claim count', argv[3], 0, 1000)
    local total = parse_int('outcome count', argv[4], 0, 1000)
    local outcomes = {}
    local index = 5
    for position = 1, total do
        local kind = argv[index]
        if kind == 'completed' then
            if argv[index + 3] == nil then
                raise('INVALID', 'outcome ' .. position .. ': "completed" takes a job id, a lease token and a result')
            end
            table.insert(outcomes, {kind = kind, id = argv[index + 1], token = argv[index + 2],
                result = argv[index + 3]})
            index = index + 4
        elseif kind == 'failed' then
            if argv[index + 9] == nil then
                raise('INVALID', 'outcome ' .. position .. ': "failed" takes a job id, a lease token, an error, '
                    .. 'retry, delay_ms, backoff_base_ms, backoff_cap_ms, jitter and max_retries')
            end
            local ok, how = pcall(failure_settings, argv[index + 4], argv[index + 5], argv[index + 6],
                argv[index + 7], argv[index + 8], argv[index + 9])
            if not ok then
                local message = type(how) == 'table' and how.err or tostring(how)
                raise('INVALID', 'outcome ' .. position .. ': ' .. string.gsub(message, '^INVALID ', ''))
            end
            table.insert(outcomes, {kind = kind, id = argv[index + 1], token = argv[index + 2],
                message = argv[index + 3], how = how})
            index = index + 10
        else
            raise('INVALID', 'outcome ' .. position .. ' is "' .. tostring(kind) .. '", not "completed" or "failed"')
        end
    end
    if index <= #argv then
        raise('INVALID', 'more arguments than the ' .. total .. ' outcomes announced')
    end
    local now = now_ms()
    local statuses = {}
    local batch = completed_batch()
    for position, outcome in ipairs(outcomes) do
        local valid, id = pcall(local_id, queue, outcome.id)
        if not valid then
            statuses[position] = type(id) == 'table' and id.err or tostring(id)
        elseif outcome.kind == 'completed' then
            statuses[position] = complete_one(prefix, queue, id, outcome.token, outcome.result, now, batch)
        else
            statuses[position] = fail_one(prefix, queue, id, outcome.token, outcome.message, outcome.how, now)
        end
    end
    flush_completed(prefix, batch, now)
    local jobs, next_due, paused = claim_jobs(prefix, queue, worker, lease_ms, wanted, 1000, now, true)
    return {statuses, jobs, next_due, paused, now}
end))
