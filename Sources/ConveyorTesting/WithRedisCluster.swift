public import LocalRedis

/// Runs `body` with a private Redis Cluster (primaries and replicas on free loopback ports, formed and agreed) and
/// always stops every node afterwards, also when `body` throws and also nodes `body` killed.
///
/// ```swift
/// @Test func slotMoves() async throws {
///     try await withRedisCluster { cluster in
///         let slot = LocalRedisCluster.slot(of: "{user42}:profile")
///         try await cluster.migrateSlot(slot, to: cluster.nodes[1])
///     }
/// }
/// ```
///
/// - Parameters:
///   - options: The cluster's shape, node timeout and extra server options.
///   - body: The test, given the running cluster.
/// - Throws: What `body` throws, or ``LocalRedis/LocalRedisServerError`` when the cluster does not start.
public func withRedisCluster(
    _ options: LocalRedisCluster.Options = LocalRedisCluster.Options(),
    _ body: (LocalRedisCluster) async throws -> Void
) async throws {
    let cluster = try await LocalRedisCluster.start(options)
    do {
        try await body(cluster)
        await cluster.stop()
    } catch {
        await cluster.stop()
        throw error
    }
}
