public import Conveyor
import Foundation
public import HTTPTypes

/// An API failure, answered as `{"error": {"code": …, "message": …, "job_id": …}}` with an HTTP status.
///
/// The codes are those of ``ConveyorError`` (`invalidArgument`, `jobNotFound`, `invalidState`, `duplicate`, …)
/// plus the HTTP layer's own: `unauthorized`, `forbidden`, `readOnly`, `csrf`, `notFound`, `methodNotAllowed`,
/// `payloadTooLarge`.
public struct APIError: Error, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// The code (a ``ConveyorError/Code`` name or one of the HTTP layer's).
    public var code: String
    /// What went wrong and what to do.
    public var message: String
    /// The job concerned, if any.
    public var jobID: String?

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, jobID: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.jobID = jobID
    }

    /// The API error for a Conveyor error, with the status that fits its code.
    public init(_ error: ConveyorError) {
        let status: HTTPResponse.Status =
            switch error.code {
            case .invalidArgument: .badRequest
            case .jobNotFound: .notFound
            case .invalidState, .duplicate, .staleLease: .conflict
            case .malformedJob: .unprocessableContent
            case .timeout: .gatewayTimeout
            default: .serviceUnavailable
            }
        self.init(status, error.code.description, error.message, jobID: error.jobID)
    }

    /// A bad request body or parameter.
    static func invalid(_ message: String) -> APIError { APIError(.badRequest, "invalidArgument", message) }

    /// The JSON body of the answer.
    var body: [String: Any] {
        var error: [String: Any] = ["code": code, "message": message]
        if let jobID { error["job_id"] = jobID }
        return ["error": error]
    }
}
