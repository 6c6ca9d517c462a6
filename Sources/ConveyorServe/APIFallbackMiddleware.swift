import Foundation
import HTTPTypes
import Hummingbird

/// Answers a request that no route takes as a JSON error, like every other API failure, instead of the router's
/// empty 404: `405 methodNotAllowed` with `Allow` for a documented path asked with another method, `404 notFound`
/// for a path under `/api/` that the API does not have (other paths keep the router's 404). The paths and their
/// methods are those of ``OpenAPIDocument``.
struct APIFallbackMiddleware: RouterMiddleware {
    typealias Context = ServeRequestContext

    /// A documented path: its segments (`{name}` stands for any one segment) and its methods.
    struct Route {
        var segments: [Substring]
        var methods: [String]

        func matches(_ path: [Substring]) -> Bool {
            path.count == segments.count
                && zip(segments, path).allSatisfy { pattern, segment in
                    (pattern.hasPrefix("{") && pattern.hasSuffix("}")) || pattern == segment
                }
        }
    }

    static let routes: [Route] = {
        let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        guard
            let document = try? JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any],
            let paths = document["paths"] as? [String: [String: Any]]
        else { return [] }
        return paths.map { path, item in
            var allowed = methods.filter { item[$0] != nil }.map { $0.uppercased() }
            if allowed.contains("GET") && !allowed.contains("HEAD") { allowed.insert("HEAD", at: 1) }
            return Route(segments: path.split(separator: "/"), methods: allowed)
        }
    }()

    func handle(
        _ request: Request,
        context: ServeRequestContext,
        next: (Request, ServeRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path
            let segments = path.split(separator: "/")
            let methods = Self.routes.filter { $0.matches(segments) }.flatMap(\.methods)
            guard !methods.isEmpty else {
                guard AccessMiddleware.isAPI(path) else { throw error }
                return APIResponses.error(
                    APIError(.notFound, "notFound", "the API has no \(path) (its routes: /api/openapi.json)")
                )
            }
            var response = APIResponses.error(
                APIError(
                    .methodNotAllowed,
                    "methodNotAllowed",
                    "\(path) takes \(methods.joined(separator: ", ")), not \(request.method.rawValue)"
                )
            )
            response.headers[.allow] = methods.joined(separator: ", ")
            return response
        }
    }
}
