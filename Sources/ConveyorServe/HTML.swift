import Foundation
import Hummingbird
import NIOCore

/// HTML building: every piece of text from Redis goes through ``escape(_:)``, so a job payload, error or type that
/// holds `<script>` is shown as text. The pages also send a Content-Security-Policy that allows only this server's
/// own script file, so even a missed escape could not run inline script.
enum HTML {
    /// `text` with `& < > " '` replaced by entities: safe in element content and in quoted attributes.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// A path segment with everything but unreserved characters percent-encoded.
    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(
            withAllowedCharacters: .init(
                charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
            )
        ) ?? ""
    }

    /// The path of a job's page.
    static func jobPath(_ id: String) -> String {
        let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return "/" }
        return "/jobs/\(pathSegment(parts[0]))/\(pathSegment(parts[1]))"
    }

    /// A time as `<time>`, written in UTC and turned into the viewer's time zone by the page's script.
    static func time(_ date: Date?) -> String {
        guard let date else { return "–" }
        let milliseconds = Int((date.timeIntervalSince1970 * 1000).rounded())
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let text = formatter.string(from: date)
        return "<time datetime=\"\(text)\" data-ms=\"\(milliseconds)\">\(escape(text))</time>"
    }

    /// An action button: the page's script sends `method path` with the CSRF token and refreshes the page's live
    /// part.
    static func action(
        _ label: String,
        _ method: String,
        _ path: String,
        confirm: String? = nil,
        readOnly: Bool
    ) -> String {
        guard !readOnly else { return "" }
        let confirmation = confirm.map { " data-confirm=\"\(escape($0))\"" } ?? ""
        return
            "<button class=\"action\" data-method=\"\(method)\" data-path=\"\(escape(path))\"\(confirmation)>\(escape(label))</button>"
    }

    /// A whole page.
    static func page(
        title: String,
        body: String,
        context: ServeRequestContext,
        live: [String: String] = [:],
        signedIn: Bool = true
    ) -> Response {
        let attributes = live.sorted { $0.key < $1.key }.map { " data-\($0.key)=\"\(escape($0.value))\"" }.joined()
        let navigation =
            signedIn
            ? """
            <nav><a class="brand" href="/">Conveyor</a><a href="/">Overview</a><a href="/schedules">Schedules</a>\
            <a href="/workers">Workers</a><span id="live-state" title="live updates">●</span>\
            <form method="post" action="/logout?_csrf=\(escape(context.csrfToken))"><button>Sign out</button></form></nav>
            """ : "<nav><span class=\"brand\">Conveyor</span></nav>"
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="csrf-token" content="\(escape(context.csrfToken))">
            <title>\(escape(title)) · Conveyor</title>
            <link rel="stylesheet" href="/assets/app.css"><script src="/assets/app.js" defer></script></head>
            <body\(attributes)>\(navigation)<div id="flash" role="status"></div>
            <main id="live">\(body)</main></body></html>
            """
        return htmlResponse(html)
    }

    /// Just the live part of a page, which the script fetches again after events (`?fragment=1`).
    static func fragment(_ body: String) -> Response { htmlResponse(body) }

    private static func htmlResponse(_ html: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .contentSecurityPolicy:
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
                .init("X-Content-Type-Options")!: "nosniff", .init("Referrer-Policy")!: "same-origin",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }
}
