public import LocalRedis

/// Runs `body` with a private master group (a primary, replicas and Sentinels on free loopback ports) and always
/// stops every server afterwards, also when `body` throws.
///
/// - Parameters:
///   - options: The group's shape and Sentinel timings.
///   - body: The test, given the running group.
/// - Throws: What `body` throws, or ``LocalRedis/LocalRedisServerError`` when the group does not start.
public func withSentinelGroup(
    _ options: LocalSentinelGroup.Options = LocalSentinelGroup.Options(),
    _ body: (LocalSentinelGroup) async throws -> Void
) async throws {
    let group = try await LocalSentinelGroup.start(options)
    do {
        try await body(group)
        await group.stop()
    } catch {
        await group.stop()
        throw error
    }
}
