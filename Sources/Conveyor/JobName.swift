/// A job type tied to its payload and result types, used both to enqueue and to register the handler, so that a
/// payload of the wrong type does not compile.
///
/// ```swift
/// struct Email: Codable, Sendable { var to: String }
/// struct Receipt: Codable, Sendable { var messageID: String }
/// let sendEmail = JobName<Email, Receipt>("send_email")
///
/// handlers.register(sendEmail) { email, context in Receipt(messageID: "…") }
/// let enqueued = try await jobs.enqueue(sendEmail, Email(to: "a@example.com"))
/// let receipt = try await jobs.result(of: enqueued, as: sendEmail, timeout: .seconds(30))
/// ```
///
/// A job without a result uses ``NoResult`` as `Output`. Other languages enqueue the same job by its name
/// (`rawValue`) with string-typed calls, which stay.
public struct JobName<Payload: Codable & Sendable, Output: Codable & Sendable>: Sendable, Hashable,
    CustomStringConvertible
{
    /// The job type as stored in Redis (1-128 letters, digits or `_ . - : /`).
    public let rawValue: String

    /// Names a job type.
    ///
    /// - Parameter rawValue: The job type; it is checked when a job is enqueued or a handler registered.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// The `Output` of a ``JobName`` whose jobs return nothing (their result stays unset).
public struct NoResult: Codable, Sendable, Hashable {
    /// The only value.
    public init() {}
}
