import RedisClient

/// How long to wait before retrying a failed attempt: exponential, with full jitter, capped.
///
/// The delay before retry `n` (counting from 0) is a random fraction of `min(cap, base × 2ⁿ)` (full jitter, so
/// many jobs failing together do not retry together), computed atomically in Redis from the job's retry count.
public struct Backoff: Sendable, Hashable {
    /// The delay scale of the first retry.
    public var base: Duration
    /// The longest delay.
    public var cap: Duration
    /// Whether to pick a random fraction of the delay (full jitter); without it the delay is exactly
    /// `min(cap, base × 2ⁿ)`.
    public var jitter: Bool

    /// Creates a backoff.
    ///
    /// - Parameters:
    ///   - base: First-retry delay scale (1 s).
    ///   - cap: Longest delay (1 h).
    ///   - jitter: Full jitter (on).
    public init(base: Duration = .seconds(1), cap: Duration = .seconds(3600), jitter: Bool = true) {
        self.base = base
        self.cap = cap
        self.jitter = jitter
    }

    /// The `conveyor_fail` options that apply this backoff.
    var failOptions: [any RedisArgumentConvertible] {
        [
            "backoff_base_ms", JobQueue.milliseconds(base),
            "backoff_cap_ms", JobQueue.milliseconds(cap),
            "jitter", jitter ? String(Double.random(in: 0..<1)) : "1",
        ]
    }
}
