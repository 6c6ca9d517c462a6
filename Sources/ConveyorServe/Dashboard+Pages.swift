import Conveyor
import Foundation
import Hummingbird

extension Dashboard {
    // MARK: - Job

    func jobPage(_ request: Request, _ context: ServeRequestContext) async -> Response {
        let id = ServeAPI.jobID(context)
        return await Self.render(
            request,
            context,
            title: id,
            live: ["page": "job", "job": id, "queues": context.pathParameter("queue")]
        ) {
            guard let job = try await jobs.get(id) else { throw ConveyorError(.jobNotFound, "no job \(id)", jobID: id) }
            async let progressTask = jobs.progress(of: id)
            async let eventsTask = jobs.events(ofJob: id)
            let progress = try await progressTask
            let events = try await eventsTask
            var html =
                "<h1>Job \(HTML.escape(job.id)) <span class=\"status \(job.status.rawValue)\" id=\"job-status\">\(job.status.rawValue)</span></h1>"
            html +=
                "<p class=\"actions\">\(Self.jobActions(job, readOnly: configuration.readOnly))</p><table class=\"fields\" id=\"job-fields\"><tbody>"
            var fields: [(String, String)] = [
                ("queue", "<a href=\"/queues/\(HTML.pathSegment(job.queue))\">\(HTML.escape(job.queue))</a>"),
                ("type", HTML.escape(job.type)), ("status", job.status.rawValue),
                ("attempts", "\(job.attempts)"), ("retries", "\(job.retryCount) of \(job.maxRetries)"),
                ("priority", "\(job.priority)"), ("stalls", "\(job.stalls)"),
                ("created", HTML.time(job.createdAt)), ("run at", HTML.time(job.runAt)),
                ("started", HTML.time(job.startedAt)), ("finished", HTML.time(job.finishedAt)),
                ("updated", HTML.time(job.updatedAt)),
            ]
            if let reference = job.reference {
                fields.append(("reference", HTML.escape("\(reference.type):\(reference.id)")))
            }
            if let worker = job.worker { fields.append(("worker", HTML.escape(worker))) }
            if let timeout = job.timeout { fields.append(("timeout", HTML.escape("\(timeout)"))) }
            if let key = job.uniqueKey { fields.append(("unique key", HTML.escape(key))) }
            if job.cancelRequested { fields.append(("cancel", "requested")) }
            if job.failedPermanently { fields.append(("failed", "for good (not retried)")) }
            for (name, value) in fields { html += "<tr><th>\(name)</th><td>\(value)</td></tr>" }
            html += "</tbody></table>"
            if let error = job.error {
                html += "<h2>Error</h2><pre class=\"error\" id=\"job-error\">\(HTML.escape(error))</pre>"
            }
            if let progress {
                html += "<h2>Progress</h2><pre id=\"job-progress\">\(HTML.escape(Self.pretty(progress)))</pre>"
            }
            html += "<h2>Payload</h2><pre id=\"job-payload\">\(HTML.escape(Self.pretty(job.payload)))</pre>"
            if let result = job.result {
                html += "<h2>Result</h2><pre id=\"job-result\">\(HTML.escape(Self.pretty(result)))</pre>"
            }
            html += "<h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">"
            for event in events {
                html +=
                    "<li>\(HTML.time(event.at)) \(event.from?.rawValue ?? "new") → \(event.to?.rawValue ?? "removed")"
                    + (event.error.map { " <span class=\"error\">\(HTML.escape($0))</span>" } ?? "") + "</li>"
            }
            if events.isEmpty { html += "<li class=\"empty\">no events kept for this job</li>" }
            return html + "</ol>"
        }
    }

    /// JSON text indented, or the text itself when it is not JSON.
    static func pretty(_ text: String) -> String {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
            let data = try? JSONSerialization.data(
                withJSONObject: value,
                options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]
            )
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }

    // MARK: - Schedules

    func schedulesPage(_ request: Request, _ context: ServeRequestContext) async -> Response {
        let names = (try? await jobs.queues()) ?? []
        return await Self.render(
            request,
            context,
            title: "Schedules",
            live: ["page": "schedules", "queues": names.joined(separator: " ")]
        ) {
            let schedules = try await jobs.schedules()
            let readOnly = configuration.readOnly
            var html =
                "<h1>Schedules</h1><table id=\"schedules\"><thead><tr><th>name</th><th>queue</th><th>type</th><th>rule</th><th>next run</th><th>last run</th><th>state</th><th></th></tr></thead><tbody>"
            for stored in schedules {
                let schedule = stored.schedule
                let rule: String
                switch schedule.rule {
                case .every(let interval): rule = "every \(interval)"
                case .cron(let expression, let zone): rule = "cron \(expression.description) (\(zone.identifier))"
                }
                let path = "/api/schedules/\(HTML.pathSegment(schedule.queue))/\(HTML.pathSegment(schedule.name))"
                var actions =
                    stored.isPaused
                    ? HTML.action("Resume", "POST", path + "/resume", readOnly: readOnly)
                    : HTML.action("Pause", "POST", path + "/pause", readOnly: readOnly)
                actions += HTML.action("Run now", "POST", path + "/run", readOnly: readOnly)
                actions += HTML.action(
                    "Remove",
                    "DELETE",
                    path,
                    confirm: "Remove schedule \(schedule.name)?",
                    readOnly: readOnly
                )
                html +=
                    "<tr data-schedule=\"\(HTML.escape(schedule.name))\"><td>\(HTML.escape(schedule.name))</td><td>\(HTML.escape(schedule.queue))</td><td>\(HTML.escape(schedule.type))</td><td>\(HTML.escape(rule))</td><td>\(HTML.time(stored.nextRunAt))</td><td>\(HTML.time(stored.lastRunAt))</td><td>\(stored.isPaused ? "paused" : "active")</td><td>\(actions)</td></tr>"
            }
            if schedules.isEmpty {
                html +=
                    "<tr><td colspan=\"8\" class=\"empty\">no schedules (<code>conveyor schedule add</code>)</td></tr>"
            }
            return html + "</tbody></table><p class=\"note\">Times are shown in your time zone.</p>"
        }
    }

    // MARK: - Workers and leader

    func workersPage(_ request: Request, _ context: ServeRequestContext) async -> Response {
        let names = (try? await jobs.queues()) ?? []
        return await Self.render(
            request,
            context,
            title: "Workers",
            live: ["page": "workers", "queues": names.joined(separator: " ")]
        ) {
            async let workersTask = jobs.workers()
            async let leaderTask = jobs.leader()
            let workers = try await workersTask
            let leader = try await leaderTask
            var html = "<h1>Leader</h1><p id=\"leader\">"
            if let leader {
                html +=
                    "<strong>\(HTML.escape(leader.node))</strong>, epoch \(leader.epoch), since \(HTML.time(leader.since)), lease until \(HTML.time(leader.expiresAt))"
            } else {
                html += "none: no node runs the recurring scheduler"
            }
            html +=
                "</p><h1>Workers (\(workers.count))</h1><table id=\"workers\"><thead><tr><th>id</th><th>host</th><th>pid</th><th>queues</th><th>concurrency</th><th>running</th><th>started</th><th>heartbeat</th></tr></thead><tbody>"
            for worker in workers {
                let running = worker.inFlight.map { "<a href=\"\(HTML.jobPath($0))\">\(HTML.escape($0))</a>" }.joined(
                    separator: " "
                )
                html +=
                    "<tr><td>\(HTML.escape(worker.id))</td><td>\(HTML.escape(worker.host))</td><td class=\"num\">\(worker.pid)</td><td>\(HTML.escape(worker.queues.joined(separator: ", ")))</td><td class=\"num\">\(worker.concurrency)</td><td>\(worker.inFlight.count) \(running)</td><td>\(HTML.time(worker.startedAt))</td><td>\(HTML.time(worker.lastHeartbeat))</td></tr>"
            }
            if workers.isEmpty { html += "<tr><td colspan=\"8\" class=\"empty\">no live workers</td></tr>" }
            return html + "</tbody></table>"
        }
    }

    // MARK: - Sign-in

    func signInPage(_ request: Request, _ context: ServeRequestContext, failed: Bool = false) -> Response {
        let next = QueryParameters(request: request).string("next") ?? "/"
        var form = "<h1>Sign in</h1>"
        if failed { form += "<p class=\"error\" id=\"sign-in-error\">Wrong credentials.</p>" }
        form +=
            "<form method=\"post\" action=\"/login?_csrf=\(HTML.escape(context.csrfToken))&amp;next=\(HTML.escape(next.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/"))\" class=\"sign-in\">"
        if case .user = configuration.access {
            form += "<label>User <input name=\"user\" autocomplete=\"username\" required></label>"
            form +=
                "<label>Password <input name=\"secret\" type=\"password\" autocomplete=\"current-password\" required></label>"
        } else {
            form +=
                "<label>Token <input name=\"secret\" type=\"password\" autocomplete=\"current-password\" required></label>"
        }
        form += "<button id=\"sign-in\">Sign in</button></form>"
        var response = HTML.page(title: "Sign in", body: form, context: context, signedIn: false)
        if failed { response.status = .unauthorized }
        return response
    }
}
