import Conveyor
import Foundation
import Hummingbird

/// The dashboard's pages, rendered on the server from Redis; the page script refreshes their live part when events
/// arrive (Server-Sent Events from `/api/events`).
struct Dashboard: Sendable {
    let jobs: JobQueue
    let configuration: ServeConfiguration
    let api: ServeAPI

    static let listedStatuses: [JobStatus] = [
        .pending, .scheduled, .processing, .retrying, .completed, .failed, .cancelled,
    ]

    /// Answers with the whole page, or with its live part when the script asks (`?fragment=1`).
    static func render(
        _ request: Request,
        _ context: ServeRequestContext,
        title: String,
        live: [String: String],
        _ body: () async throws -> String
    ) async -> Response {
        do {
            let html = try await body()
            if request.uri.queryParameters["fragment"] == "1" { return HTML.fragment(html) }
            return HTML.page(title: title, body: html, context: context, live: live)
        } catch {
            let message: String
            switch error {
            case let error as APIError: message = error.message
            case let error as ConveyorError: message = error.message
            default: message = "\(error)"
            }
            var response = HTML.page(
                title: "Error",
                body: "<h1>Error</h1><p class=\"error\">\(HTML.escape(message))</p><p><a href=\"/\">Overview</a></p>",
                context: context
            )
            response.status =
                (error as? APIError)?.status ?? (error as? ConveyorError).map { APIError($0).status }
                ?? .internalServerError
            return response
        }
    }

    // MARK: - Overview

    func overview(_ request: Request, _ context: ServeRequestContext) async -> Response {
        let names = (try? await jobs.queues()) ?? []
        return await Self.render(
            request,
            context,
            title: "Overview",
            live: ["page": "overview", "queues": names.joined(separator: " ")]
        ) {
            let summaries = try await names.concurrentMap { name in
                async let summary = QueueSummary.read(name, from: jobs)
                async let history = jobs.history(queue: name, minutes: 60)
                return (try await summary, try await history)
            }
            var totalsByMinute: [Date: (completed: Int, failed: Int)] = [:]
            var rows = ""
            for (summary, history) in summaries {
                let name = summary.name
                let counts = summary.counts
                var completedHour = 0
                var failedHour = 0
                for minute in history {
                    let completed = minute.counts["completed"] ?? 0
                    let failed = minute.counts["failed"] ?? 0
                    completedHour += completed
                    failedHour += failed
                    totalsByMinute[minute.minute, default: (0, 0)].completed += completed
                    totalsByMinute[minute.minute, default: (0, 0)].failed += failed
                }
                let lastMinute = history.last.map { ($0.counts["completed"] ?? 0, $0.counts["failed"] ?? 0) } ?? (0, 0)
                let paused = summary.paused
                let rate =
                    completedHour + failedHour > 0
                    ? String(format: "%.1f%%", Double(failedHour) * 100 / Double(completedHour + failedHour)) : "–"
                rows +=
                    "<tr data-queue=\"\(HTML.escape(name))\"><td><a href=\"/queues/\(HTML.pathSegment(name))\">\(HTML.escape(name))</a>"
                    + (paused ? " <span class=\"badge paused\">paused</span>" : "") + "</td>"
                for status in Self.listedStatuses {
                    rows +=
                        "<td class=\"num\" data-status=\"\(status.rawValue)\"><a href=\"/queues/\(HTML.pathSegment(name))?status=\(status.rawValue)\">\(counts[status.rawValue] ?? 0)</a></td>"
                }
                rows +=
                    "<td class=\"num\">\(lastMinute.0)</td><td class=\"num\">\(completedHour)</td><td class=\"num\">\(rate)</td>"
                rows += "<td class=\"num\">\(Self.duration(milliseconds: summary.latencyMilliseconds))</td></tr>"
            }
            let header = Self.listedStatuses.map { "<th>\($0.rawValue)</th>" }.joined()
            let table =
                names.isEmpty
                ? "<p>No queues yet: enqueue a job (<code>conveyor enqueue &lt;type&gt;</code>) and it appears here.</p>"
                : "<table id=\"queues\"><thead><tr><th>queue</th>\(header)<th>done/min</th><th>done/hour</th><th>failure rate (1 h)</th><th>latency</th></tr></thead><tbody>\(rows)</tbody></table>"
            return "<h1>Overview</h1>" + Self.chart(totalsByMinute) + table
                + "<h2>Live</h2><ol id=\"feed\" class=\"feed\"></ol>"
        }
    }

    /// Completed and failed jobs per minute over the last hour, as an inline SVG.
    static func chart(_ totals: [Date: (completed: Int, failed: Int)]) -> String {
        let minutes = totals.keys.sorted()
        guard !minutes.isEmpty else { return "" }
        let peak = max(1, minutes.map { (totals[$0]?.completed ?? 0) + (totals[$0]?.failed ?? 0) }.max() ?? 1)
        let width = 600.0
        let height = 120.0
        let step = width / Double(max(1, minutes.count))
        var bars = ""
        for (index, minute) in minutes.enumerated() {
            let value = totals[minute] ?? (0, 0)
            let x = Double(index) * step
            let completedHeight = Double(value.completed) / Double(peak) * height
            let failedHeight = Double(value.failed) / Double(peak) * height
            bars += String(
                format:
                    "<rect class=\"completed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%d completed</title></rect>",
                x,
                height - completedHeight - failedHeight,
                max(1, step - 1),
                completedHeight,
                value.completed
            )
            bars += String(
                format:
                    "<rect class=\"failed\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%d failed</title></rect>",
                x,
                height - failedHeight,
                max(1, step - 1),
                failedHeight,
                value.failed
            )
        }
        let total = minutes.reduce((0, 0)) { ($0.0 + (totals[$1]?.completed ?? 0), $0.1 + (totals[$1]?.failed ?? 0)) }
        return """
            <figure class="chart"><figcaption>Last hour, per minute: \(total.0) completed, \(total.1) failed \
            (peak \(peak)/min)</figcaption><svg id="throughput" viewBox="0 0 \(Int(width)) \(Int(height))" \
            preserveAspectRatio="none" role="img" aria-label="jobs finished per minute">\(bars)</svg></figure>
            """
    }

    static func duration(milliseconds: Int) -> String {
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        if milliseconds < 120_000 { return String(format: "%.1f s", Double(milliseconds) / 1000) }
        if milliseconds < 7_200_000 { return "\(milliseconds / 60_000) min" }
        return "\(milliseconds / 3_600_000) h"
    }

    // MARK: - Queue

    func queuePage(_ request: Request, _ context: ServeRequestContext) async -> Response {
        let name = context.pathParameter("queue")
        return await Self.render(request, context, title: name, live: ["page": "queue", "queues": name]) {
            let name = try await api.knownQueue(context)
            let query = QueryParameters(request: request)
            let status = try query.choice("status", ServeAPI.statuses) ?? .pending
            let offset = try query.integer("offset", in: 0...1_000_000_000, default: 0)
            let limit = 25
            let search = (query.string("q") ?? "").trimmingCharacters(in: .whitespaces)
            async let summaryTask = QueueSummary.read(name, from: jobs)
            let summary = try await summaryTask
            let counts = summary.counts
            let paused = summary.paused
            var found: [Job]
            var total = counts[status.rawValue] ?? 0
            if search.isEmpty {
                found = try await jobs.list(
                    queue: name,
                    status: status,
                    offset: offset,
                    limit: limit,
                    order: status == .pending ? .oldestFirst : .newestFirst
                )
            } else if let job = try? await jobs.get(search.contains("/") ? search : "\(name)/\(search)") {
                found = [job]
                total = 1
            } else {
                found = try await jobs.list(
                    queue: name,
                    status: status,
                    type: search,
                    offset: offset,
                    limit: limit,
                    order: .newestFirst,
                    scanLimit: 20_000
                )
                total = offset + found.count + (found.count == limit ? 1 : 0)
            }
            let readOnly = configuration.readOnly
            let queuePath = "/api/queues/\(HTML.pathSegment(name))"
            var html =
                "<h1>Queue \(HTML.escape(name))" + (paused ? " <span class=\"badge paused\">paused</span>" : "")
                + "</h1><p class=\"actions\">"
            html +=
                paused
                ? HTML.action("Resume queue", "POST", queuePath + "/resume", readOnly: readOnly)
                : HTML.action("Pause queue", "POST", queuePath + "/pause", readOnly: readOnly)
            if (counts["failed"] ?? 0) > 0 {
                html += HTML.action(
                    "Retry all failed",
                    "POST",
                    queuePath + "/retry-failed",
                    confirm: "Retry every failed job of \(name)?",
                    readOnly: readOnly
                )
            }
            html += "</p><ul class=\"tabs\">"
            for listed in Self.listedStatuses {
                html +=
                    "<li\(listed == status ? " class=\"current\"" : "")><a href=\"?status=\(listed.rawValue)\">\(listed.rawValue) <span class=\"count\">\(counts[listed.rawValue] ?? 0)</span></a></li>"
            }
            html +=
                "</ul><form class=\"search\" method=\"get\"><input type=\"hidden\" name=\"status\" value=\"\(status.rawValue)\"><input name=\"q\" value=\"\(HTML.escape(search))\" placeholder=\"job id or type\"><button>Search</button></form>"
            html +=
                "<table id=\"jobs\"><thead><tr><th>id</th><th>type</th><th>status</th><th>attempts</th><th>created</th><th>run at</th><th>error</th><th></th></tr></thead><tbody>"
            for job in found {
                html +=
                    "<tr data-job=\"\(HTML.escape(job.id))\"><td><a href=\"\(HTML.jobPath(job.id))\">\(HTML.escape(job.id))</a></td><td>\(HTML.escape(job.type))</td><td class=\"status \(job.status.rawValue)\">\(job.status.rawValue)</td><td class=\"num\">\(job.attempts)</td><td>\(HTML.time(job.createdAt))</td><td>\(HTML.time(job.runAt))</td><td class=\"error\">\(HTML.escape(String((job.error ?? "").prefix(120))))</td><td>\(Self.jobActions(job, readOnly: readOnly))</td></tr>"
            }
            if found.isEmpty {
                html +=
                    "<tr><td colspan=\"8\" class=\"empty\">no \(status.rawValue) jobs\(search.isEmpty ? "" : " matching \(HTML.escape(search))")</td></tr>"
            }
            html += "</tbody></table><p class=\"pages\">"
            let searchPart =
                search.isEmpty
                ? "" : "&q=" + (search.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            if offset > 0 {
                html +=
                    "<a rel=\"prev\" href=\"?status=\(status.rawValue)&offset=\(max(0, offset - limit))\(searchPart)\">← newer</a> "
            }
            html += "\(found.isEmpty ? 0 : offset + 1)–\(offset + found.count) of \(total)"
            if offset + found.count < total {
                html +=
                    " <a rel=\"next\" href=\"?status=\(status.rawValue)&offset=\(offset + limit)\(searchPart)\">older →</a>"
            }
            return html + "</p>"
        }
    }

    /// The actions that fit a job's status.
    static func jobActions(_ job: Job, readOnly: Bool) -> String {
        let path = "/api" + HTML.jobPath(job.id)
        var html = ""
        if [.failed, .cancelled, .retrying, .scheduled].contains(job.status) {
            html += HTML.action("Retry", "POST", path + "/retry", readOnly: readOnly)
        }
        if [.pending, .scheduled, .retrying, .processing].contains(job.status) {
            html += HTML.action("Cancel", "POST", path + "/cancel", readOnly: readOnly)
        }
        if job.status != .processing {
            html += HTML.action("Remove", "DELETE", path, confirm: "Remove \(job.id)?", readOnly: readOnly)
        }
        return html
    }
}
