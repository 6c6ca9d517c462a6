import Conveyor
import Foundation
import Hummingbird
import NIOCore

/// `GET /api/events`: the queues' transitions as Server-Sent Events, one `jobs` event per batch read from Redis
/// (`data:` a JSON array of events), and a comment every 15 s so that proxies keep the connection open.
///
/// Memory stays bounded however fast jobs move: the next batch is read only after the last one was written to the
/// client, and one batch holds at most 500 entries per queue. A client too slow for the stream falls behind and
/// then skips what the stream trimmed meanwhile; it never makes the server buffer.
enum LiveEvents {
    static func response(jobs: JobQueue, queues requested: [String]) async throws -> Response {
        for queue in requested { try JobQueue.validateQueue(queue) }
        let queues = requested.isEmpty ? try await jobs.queues() : requested
        guard !queues.isEmpty else {
            throw APIError.invalid("no queues yet: enqueue a job first, or name the queues with ?queue=")
        }
        let sequence = try await jobs.events(queues: queues, from: .now)
        let body = ResponseBody { writer in
            var iterator = sequence.makeAsyncIterator()
            try await writer.write(ByteBuffer(string: "retry: 1000\n: connected\n\n"))
            while !Task.isCancelled {
                let batch = try await iterator.nextBatch(waitingAtMost: .seconds(15))
                if batch.isEmpty {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    continue
                }
                let data = try JSONSerialization.data(
                    withJSONObject: batch.map(ServeAPI.eventObject),
                    options: [.withoutEscapingSlashes]
                )
                var buffer = ByteBuffer(string: "event: jobs\ndata: ")
                buffer.writeBytes(data)
                buffer.writeString("\n\n")
                try await writer.write(buffer)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", .init("X-Accel-Buffering")!: "no"],
            body: body
        )
    }
}
