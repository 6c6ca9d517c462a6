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
