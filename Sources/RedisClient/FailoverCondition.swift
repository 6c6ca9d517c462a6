/// An error reply that says the server cannot take the command now, rather than that the command is wrong: the
/// command did not run, so sending it again later, or to another server, is safe whatever it does.
///
/// `READONLY` (the server is a replica: a failover demoted it, or the URL names a replica), `MASTERDOWN` (a replica
/// that lost its primary, with `replica-serve-stale-data no`), `LOADING` (the server is reading its data after a
/// restart), `BUSY` (a script or function has run past `busy-reply-threshold`), `UNBLOCKED` (a blocked command ended
/// because the server became a replica), `TRYAGAIN` and `CLUSTERDOWN` (a cluster in the middle of a change).
struct FailoverCondition: Equatable {
    /// The error code: the reply's first word.
    let code: String
    /// The whole error reply.
    let message: String

    init?(reply: RedisReply) {
        guard case .error(let message) = reply else { return nil }
        // WAIT after a write is refused on a replica with a plain ERR: the same condition as READONLY.
        if message.hasPrefix("ERR WAIT cannot be used with replica") {
            self.code = "READONLY"
            self.message = message
            return
        }
        let code = message.prefix { $0 != " " }
        guard Self.codes.contains(String(code)) else { return nil }
        self.code = String(code)
        self.message = message
    }

    private static let codes: Set<String> = [
        "READONLY", "MASTERDOWN", "LOADING", "BUSY", "UNBLOCKED", "TRYAGAIN", "CLUSTERDOWN",
    ]

    /// Whether the connection should be dropped so that the next connect finds the primary again.
    var leavesTheServer: Bool { ["READONLY", "MASTERDOWN", "UNBLOCKED"].contains(code) }

    /// What the condition says about the server, for messages ("is a read-only replica").
    var meaning: String {
        switch code {
        case "READONLY", "UNBLOCKED": "is a read-only replica, not the primary"
        case "MASTERDOWN": "is a replica that lost its primary"
        case "LOADING": "was still loading its data"
        case "BUSY": "was busy running a script"
        default: "was in the middle of a cluster change"
        }
    }

    /// What to do when waiting did not help.
    var advice: String {
        switch code {
        case "READONLY", "UNBLOCKED", "MASTERDOWN":
            "point the URL at the primary, or use redis+sentinel://… so that Conveyor follows failovers"
        case "LOADING": "wait until INFO persistence shows loading:0, or raise the failover timeout"
        case "BUSY": "end the script (SCRIPT KILL or FUNCTION KILL) or raise busy-reply-threshold"
        default: "check CLUSTER INFO"
        }
    }
}
