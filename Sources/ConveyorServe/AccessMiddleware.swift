import Foundation
import HTTPTypes
import Hummingbird

/// Who may do what, checked before every route:
///
/// - **Authentication**: `Authorization: Bearer <token>` or `Basic <user:password>` (API clients), or the signed
///   `conveyor_session` cookie that the sign-in page sets (browsers). Without either, API paths answer
///   `401 unauthorized` and pages redirect to `/login`. `/health`, `/health/*`, `/login` and `/assets/*` need
///   none.
/// - **CSRF**: a request that changes something and is authenticated by something a browser sends by itself (the
///   cookie, or nothing at all with open access) must carry `X-CSRF-Token` (or the form field `_csrf`) equal to its
///   `conveyor_csrf` cookie, which a page of another site can neither read nor set. An `Authorization` header is
///   never sent by a browser on its own (the server never asks for Basic authentication), so it needs no token.
/// - **Read-only**: every change answers `403 readOnly`.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = ServeRequestContext

    static let sessionCookie = "conveyor_session"
    static let csrfCookie = "conveyor_csrf"
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

    let configuration: ServeConfiguration
    let session: SignedSession?

    init(configuration: ServeConfiguration) {
        self.configuration = configuration
        switch configuration.access {
        case .open: session = nil
        case .token(let token): session = SignedSession(secret: token)
        case .user(let name, let password): session = SignedSession(secret: name + ":" + password)
        }
    }

    func handle(
        _ request: Request,
        context: ServeRequestContext,
        next: (Request, ServeRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        let path = request.uri.path
        let existingToken = request.cookies[Self.csrfCookie]?.value ?? ""
        let isNewToken = existingToken.count != 32
        context.csrfToken = isNewToken ? SignedSession.randomToken() : existingToken
        let isPublic = path == "/health" || path.hasPrefix("/health/") || path == "/login" || path.hasPrefix("/assets/")
        let isChange = ![.get, .head, .options].contains(request.method)

        var ambient = true
        if !isPublic {
            switch authenticate(request) {
            case .header: ambient = false
            case .cookie, .open: ambient = true
            case .none:
                if Self.isAPI(path) {
                    var response = APIResponses.error(
                        APIError(
                            .unauthorized,
                            "unauthorized",
                            "sign in: send Authorization: Bearer <token> (or Basic user:password)"
                        )
                    )
                    response.headers[.wwwAuthenticate] = "Bearer realm=\"conveyor\""
                    return response
                }
                let target = request.uri.description
                let location =
                    "/login?next=" + (target.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/")
                return Response(status: .seeOther, headers: [.location: location])
            }
        }
        if isChange && path != "/login" && path != "/logout" && configuration.readOnly {
            return APIResponses.error(
                APIError(
                    .forbidden,
                    "readOnly",
                    "this server is read-only (started with --read-only): nothing can be changed"
                )
            )
        }
        // A public path takes no change but the sign-in form's, so another method there is simply not allowed.
        if isChange && ambient && (!isPublic || path == "/login") {
            let sent = request.headers[Self.csrfHeader] ?? Self.formField("_csrf", of: request) ?? ""
            guard !isNewToken, !sent.isEmpty,
                SignedSession.constantTimeEqual(Array(sent.utf8), Array(existingToken.utf8))
            else {
                return APIResponses.error(
                    APIError(
                        .forbidden,
                        "csrf",
                        "missing or wrong CSRF token: send the conveyor_csrf cookie's value as X-CSRF-Token (pages do this)"
                    )
                )
            }
        }
        var response = try await next(request, context)
        if isNewToken {
            response.setCookie(
                Cookie(name: Self.csrfCookie, value: context.csrfToken, path: "/", httpOnly: true, sameSite: .strict)
            )
        }
        return response
    }

    private enum Authentication { case header, cookie, open, none }

    private func authenticate(_ request: Request) -> Authentication {
        if case .open = configuration.access { return .open }
        if let header = request.headers[.authorization], accepts(header) { return .header }
        if let session, let cookie = request.cookies[Self.sessionCookie]?.value, session.accepts(cookie) {
            return .cookie
        }
        return .none
    }

    /// Whether an `Authorization` header carries the configured credential.
    func accepts(_ header: String) -> Bool {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return false }
        switch (configuration.access, parts[0].lowercased()) {
        case (.token(let token), "bearer"):
            return SignedSession.constantTimeEqual(Array(parts[1].utf8), Array(token.utf8))
        case (.user(let name, let password), "basic"):
            guard let data = Data(base64Encoded: String(parts[1])) else { return false }
            return SignedSession.constantTimeEqual(Array(data), Array((name + ":" + password).utf8))
        default: return false
        }
    }

    /// Whether a sign-in form's fields carry the configured credential.
    func acceptsSignIn(user: String, secret: String) -> Bool {
        switch configuration.access {
        case .open: return true
        case .token(let token): return SignedSession.constantTimeEqual(Array(secret.utf8), Array(token.utf8))
        case .user(let name, let password):
            return SignedSession.constantTimeEqual(
                Array((user + ":" + secret).utf8),
                Array((name + ":" + password).utf8)
            )
        }
    }

    static func isAPI(_ path: String) -> Bool { path.hasPrefix("/api/") || path == "/api" || path == "/metrics" }

    /// A field of an already collected `application/x-www-form-urlencoded` body (only the sign-in form posts one;
    /// its body is read by the route, so this looks at the query string, where forms here put `_csrf`).
    static func formField(_ name: String, of request: Request) -> String? {
        request.uri.queryParameters[Substring(name)].map(String.init)
    }
}
