import Foundation
public import Hummingbird
import Logging
import NIOCore

/// The context of one request to `conveyor serve`: Hummingbird's, plus what the access check learnt.
public struct ServeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The request's CSRF token (the `conveyor_csrf` cookie's value, or the one the response sets), which pages put
    /// in their forms and `<meta name="csrf-token">`.
    public var csrfToken = ""

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

extension ServeRequestContext {
    /// A parameter of the route's path, percent-decoded (the router matches the path as sent, so `%3A` is still
    /// escaped in it), or as sent when it is not valid percent-encoded UTF-8; `""` when the route has none.
    func pathParameter(_ name: String) -> String {
        let raw = parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }
}
