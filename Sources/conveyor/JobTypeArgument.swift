/// A job type given on the command line: the same rule as the server's at enqueue (`conveyor_enqueue`), so a type
/// that no job can ever have is refused where it is typed.
enum JobTypeArgument {
    /// The rule, for error messages.
    static let rule = "1-128 letters, digits or _ . - : /"

    /// Whether `type` is 1-128 ASCII letters, digits or `_ . - : /`.
    static func isValid(_ type: String) -> Bool {
        !type.isEmpty && type.utf8.count <= 128
            && type.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-:/".contains($0)) }
    }
}
