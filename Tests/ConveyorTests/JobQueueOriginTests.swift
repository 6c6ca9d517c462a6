import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("The origin's JobService API")
struct JobQueueOriginTests {
    struct FilePath: Codable, Sendable {
        var file_path: String
    }

    @Test func createProcessCompleteAndFindByReference() async throws {
        try await withJobQueue { jobs, _ in
            let job = try await jobs.create(
                type: "file_ingestion",
                payload: FilePath(file_path: "/path/to/file.pdf"),
                reference: JobReference(type: "file_upload", id: "42"),
                maxRetries: 3
            )
            #expect(job.status == .pending && job.maxRetries == 3 && job.retryCount == 0)
            _ = try await jobs.create(type: "embedding_generation", payload: FilePath(file_path: "x"))
            #expect(try await jobs.pending().count == 2)
            #expect(try await jobs.pending(type: "file_ingestion").map(\.id) == [job.id])
            let processing = try await jobs.markProcessing(job.id)
            #expect(processing.status == .processing)
            try await jobs.markCompleted(job.id, result: ["chunks": 12])
            let done = try #require(try await jobs.get(job.id))
            #expect(done.status == .completed && done.result == #"{"chunks":12}"#)
            #expect(try await jobs.jobs(referenceType: "file_upload", referenceID: "42").map(\.id) == [job.id])
            #expect(try await jobs.cleanupCompleted(olderThan: .seconds(7 * 86_400)) == 0)
            #expect(try await jobs.cleanupCompleted(olderThan: .zero) == 1)
            #expect(try await jobs.get(job.id) == nil)
        }
    }

    @Test func markFailedRetriesThenFailsAndFailedRetryableFindsThem() async throws {
        var configuration = JobQueue.Configuration()
        configuration.backoff = Backoff(base: .milliseconds(1), cap: .milliseconds(1), jitter: false)
        try await withJobQueue(configuration) { jobs, _ in
            let job = try await jobs.create(type: "t", payload: ["n": 1], maxRetries: 1)
            _ = try await jobs.markProcessing(job.id)
            #expect(try await jobs.markFailed(job.id, error: "network down", retry: true) == .retrying)
            #expect(try await jobs.failedRetryable().map(\.id) == [job.id])
            try await Task.sleep(for: .milliseconds(5))
            _ = try await jobs.markProcessing(job.id)
            #expect(try await jobs.markFailed(job.id, error: "network down again") == .failed)
            #expect(try await jobs.failedRetryable().isEmpty)
            let fatal = try await jobs.create(type: "t", payload: ["n": 2], maxRetries: 3)
            _ = try await jobs.markProcessing(fatal.id)
            #expect(try await jobs.markFailed(fatal.id, error: "bad file", retry: false) == .failed)
            // Issue 10, item 16: a job that failed for good (its error said not to retry) is not retryable.
            #expect(try await jobs.failedRetryable().isEmpty)
            #expect(try await jobs.get(fatal.id)?.failedPermanently == true)
            // One that failed with retries left for another reason (its lease expired too often) is.
            let stalled = try await jobs.create(type: "t", payload: ["n": 3], maxRetries: 3)
            _ = try await jobs.take(stalled.id, lease: .milliseconds(20))
            try await Task.sleep(for: .milliseconds(50))
            #expect(try await jobs.reclaimExpired(maxStalls: 0) == 1)
            #expect(try await jobs.get(stalled.id)?.status == .failed)
            #expect(try await jobs.failedRetryable().map(\.id) == [stalled.id])
            // A retry by an operator clears the mark.
            try await jobs.retry(fatal.id)
            #expect(try await jobs.get(fatal.id)?.failedPermanently == false)
        }
    }

    @Test func markCompletedFromAnotherInstanceUsesTheStoredToken() async throws {
        try await withJobQueue { jobs, _ in
            let job = try await jobs.create(type: "t", payload: ["n": 1])
            _ = try await jobs.markProcessing(job.id)
            let elsewhere = JobQueue(redis: jobs.redis)
            try await elsewhere.markCompleted(job.id, result: ["ok": true])
            #expect(try await jobs.get(job.id)?.status == .completed)
            let fresh = try await jobs.create(type: "t", payload: ["n": 2])
            try await expectRejected(jobs, .invalidState, mentioning: "never claimed") {
                try await elsewhere.markCompleted(fresh.id, result: ["ok": true])
            }
        }
    }
}
