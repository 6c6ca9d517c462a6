import Foundation

extension Job {
    /// The job as a JSON object (`JSONSerialization`), the one shape that `conveyor get --json`, `conveyor list
    /// --json` and the HTTP API print: snake_case like the job hash, times as epoch milliseconds, the payload and
    /// result as JSON values (as text when they are not valid JSON), absent fields left out.
    ///
    /// - Parameter full: Also the bookkeeping fields (`updated_at`, `stalls`, `timeout_ms`, `unique_key`,
    ///   `cancel_requested`, `failed_permanently`); the lease token is never included.
    /// - Returns: The object.
    public func jsonObject(full: Bool = false) -> [String: Any] {
        var object: [String: Any] = [
            "id": id, "queue": queue, "type": type, "status": status.rawValue,
            "retry_count": retryCount, "max_retries": maxRetries, "priority": priority,
            "attempts": attempts,
        ]
        object["payload"] = Self.jsonValue(payload)
        if let result { object["result"] = Self.jsonValue(result) }
        if let error { object["error"] = error }
        if let reference { object["reference"] = ["type": reference.type, "id": reference.id] }
        var dates = [
            ("run_at", runAt), ("created_at", createdAt), ("started_at", startedAt), ("finished_at", finishedAt),
        ]
        if full { dates.append(("updated_at", updatedAt)) }
        for (name, date) in dates {
            if let date { object[name] = Int((date.timeIntervalSince1970 * 1000).rounded()) }
        }
        if let worker { object["worker"] = worker }
        if full {
            object["stalls"] = stalls
            object["cancel_requested"] = cancelRequested
            object["failed_permanently"] = failedPermanently
            if let timeout {
                object["timeout_ms"] = Int(
                    timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
                )
            }
            if let uniqueKey { object["unique_key"] = uniqueKey }
        }
        return object
    }

    /// JSON text as a value, or the text itself when it is not JSON.
    private static func jsonValue(_ text: String) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
    }
}
