extension Array where Element: Sendable {
    /// `transform` of every element, run at once (one child task each), in the array's order: how a page or an
    /// answer reads many queues in about the time of one.
    func concurrentMap<Result: Sendable>(
        _ transform: @escaping @Sendable (Element) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            for (index, element) in enumerated() {
                group.addTask { (index, try await transform(element)) }
            }
            var results = [Result?](repeating: nil, count: count)
            for try await (index, result) in group { results[index] = result }
            return results.compactMap { $0 }
        }
    }
}
