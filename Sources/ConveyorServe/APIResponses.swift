import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// JSON answers.
enum APIResponses {
    /// `value` (a `JSONSerialization` object) as JSON.
    static func json(_ value: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data =
            (try? JSONSerialization.data(
                withJSONObject: value,
                options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]
            )) ?? Data("null".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// An error as `{"error": {…}}`.
    static func error(_ error: APIError) -> Response {
        json(error.body, status: error.status)
    }

    /// Milliseconds since the epoch, or null.
    static func milliseconds(_ date: Date?) -> Any {
        date.map { Int(($0.timeIntervalSince1970 * 1000).rounded()) } ?? NSNull()
    }
}
