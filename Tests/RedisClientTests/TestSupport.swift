import Foundation
import RedisClient

/// Waits, checking every few milliseconds, until `condition` holds; fails the test after `timeout`.
func eventually(
    timeout: Duration = .seconds(10),
    _ what: String,
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    throw WaitTimeout(what: what)
}

struct WaitTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// The number of clients blocked in a blocking command on the server.
func blockedClients(_ redis: RedisClient) async throws -> Int {
    let info = try await redis.send("INFO", "clients").string ?? ""
    for line in info.split(separator: "\r\n") where line.hasPrefix("blocked_clients:") {
        return Int(line.dropFirst("blocked_clients:".count)) ?? 0
    }
    return 0
}
