import Logging

extension Worker {
    /// Runs the embedded scheduler until the worker's shutdown stops it. Its failure does not stop the worker: jobs
    /// still run, and another node's scheduler can lead.
    func runScheduler(_ scheduler: Scheduler) async {
        do {
            try await scheduler.run()
        } catch {
            logger.error("the recurring-job scheduler of this worker stopped: \(error); this node no longer leads")
        }
    }
}
