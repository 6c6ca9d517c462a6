/// Where a job is in its life.
///
/// `scheduled` → `pending` → `processing` → `completed`; `processing` → `retrying` → `pending`; `processing` →
/// `failed`; `scheduled`/`pending`/`retrying` → `cancelled`; `failed`/`cancelled` → `pending` (manual retry). The
/// origin's PENDING covers `scheduled`, `pending` and `retrying`.
public enum JobStatus: String, Sendable, Hashable, CaseIterable, Codable {
    /// Waiting for its run time.
    case scheduled
    /// Ready to run; waiting for a worker.
    case pending
    /// Claimed by a worker that holds its lease.
    case processing
    /// Failed an attempt; waiting for its retry time.
    case retrying
    /// Finished successfully.
    case completed
    /// Failed for good: retries exhausted, or an error that is not retryable.
    case failed
    /// Cancelled before it finished.
    case cancelled

    /// Whether the job has finished (completed, failed or cancelled).
    public var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }
}
