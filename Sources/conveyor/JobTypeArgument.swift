import Conveyor

/// A job type given on the command line: the same rule as the server's at enqueue (`conveyor_enqueue`), so a type
/// that no job can ever have is refused where it is typed.
enum JobTypeArgument {
    /// The rule, for error messages.
    static let rule = JobQueue.jobTypeRule

    /// Whether `type` is 1-128 ASCII letters, digits or `_ . - : /` (``JobQueue/isValidJobType(_:)``).
    static func isValid(_ type: String) -> Bool { JobQueue.isValidJobType(type) }
}
