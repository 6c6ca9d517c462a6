import ConveyorTesting
import Foundation
import RedisClient

/// The number of clients blocked in a blocking command on the server.
func blockedClients(_ redis: RedisClient) async throws -> Int {
    let info = try await redis.send("INFO", "clients").string ?? ""
    for line in info.split(separator: "\r\n") where line.hasPrefix("blocked_clients:") {
        return Int(line.dropFirst("blocked_clients:".count)) ?? 0
    }
    return 0
}
