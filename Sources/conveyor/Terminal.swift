import Conveyor
import Foundation

/// What the terminal can show: colour and progress bars only when a person is watching.
enum Terminal {
    /// Whether standard output is a terminal, colour is not switched off (`NO_COLOR`) and the terminal is not dumb.
    static let colour: Bool = {
        let environment = ProcessInfo.processInfo.environment
        return isatty(STDOUT_FILENO) == 1 && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb"
    }()

    /// Whether standard error is a terminal (progress bars are drawn there).
    static let interactiveErrors = isatty(STDERR_FILENO) == 1

    /// `text` in the colour of a status, when colour is on.
    static func paint(_ text: String, _ status: JobStatus?) -> String {
        guard colour else { return text }
        let code: String
        switch status {
        case .completed: code = "32"  // green
        case .failed: code = "31"  // red
        case .retrying: code = "33"  // yellow
        case .processing: code = "36"  // cyan
        case .cancelled, nil: code = "90"  // grey
        case .scheduled: code = "35"  // magenta
        case .pending: code = "34"  // blue
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    /// `text` dimmed, when colour is on.
    static func dim(_ text: String) -> String {
        colour ? "\u{1B}[2m\(text)\u{1B}[0m" : text
    }

    /// Writes a line to standard output at once (also when it is a pipe), for output that goes on until Ctrl-C.
    /// When the reader has gone (`conveyor tail | head`), the process ends quietly instead of writing into the void.
    static func printNow(_ line: String) {
        fflush(nil)  // anything print() buffered goes first
        var bytes = Array((line + "\n").utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                Foundation.exit(errno == EPIPE ? 0 : 1)
            }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Prints rows as columns aligned on the widest cell; `status` names the column to colour by job status.
    static func table(_ header: [String], _ rows: [[String]], statusColumn: Int? = nil) {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for (number, row) in ([header] + rows).enumerated() {
            let cells = row.enumerated().map { column, cell in
                let padded =
                    column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                if number > 0, column == statusColumn { return paint(padded, JobStatus(rawValue: cell)) }
                return number == 0 ? dim(padded) : padded
            }
            print(cells.joined(separator: "  "))
        }
    }
}

/// A progress bar on standard error, drawn only when standard error is a terminal.
final class ProgressBar {
    private let total: Int
    private let label: String
    private var lastDrawn = ContinuousClock.now - .seconds(1)

    init(label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
    }

    /// Redraws the bar (at most every 100 ms, and always when done).
    func update(_ done: Int) {
        guard Terminal.interactiveErrors else { return }
        let now = ContinuousClock.now
        guard done >= total || now - lastDrawn >= .milliseconds(100) else { return }
        lastDrawn = now
        let width = 30
        let filled = min(width, done * width / total)
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) \(bar) \(done)/\(total)".utf8))
    }

    /// Ends the bar's line.
    func finish() {
        guard Terminal.interactiveErrors else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
