import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// `--exec` handler processes: they never outlive their worker, see no Redis credentials, inherit no descriptor,
/// and get the payload as stored (issue 10, items 6, 9, 10 and 19).
@Suite("--exec handler processes", .timeLimit(.minutes(2)))
struct HandlerProcessTests {
    static func pids(in path: String) -> [Int32] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            Int32($0.trimmingCharacters(in: .whitespaces))
        }
    }

    @Test func aHandlerAndItsChildrenDieWithASIGKILLedWorker() async throws {
        try await withJobQueue { jobs, server in
            let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("pids-\(UUID().uuidString)")
                .path
            let handler = try script("orphan.sh", "echo $$ > \(pidFile); sleep 47 & echo $! >> \(pidFile); wait")
            let worker = WorkerProcess([
                "--redis", "redis://127.0.0.1:\(server.port)", "--exec", "long=sh \(handler)", "--log-level", "error",
            ])
            _ = try await jobs.enqueue("long", json: "{}")
            try await eventually(timeout: .seconds(30), "the handler and its child to start") {
                Self.pids(in: pidFile).count == 2
            }
            let handlerPIDs = Self.pids(in: pidFile)
            #expect(handlerPIDs.allSatisfy { kill($0, 0) == 0 })
            try await worker.signal(SIGKILL)
            #expect(try await worker.exit().signaled)
            let clock = ContinuousClock()
            let killed = clock.now
            try await eventually(timeout: .seconds(10), "the handler and its child to end") {
                handlerPIDs.allSatisfy { kill($0, 0) != 0 }
            }
            let took = clock.now - killed
            print("handlers ended \(took) after their worker's SIGKILL")
            #expect(took < .seconds(3), "the handler outlived its worker by \(took)")
        }
    }

    @Test func handlersGetNoRedisCredentialsAndThePayloadAsStored() async throws {
        try await withJobQueue { jobs, server in
            _ = try await jobs.redis.send("CONFIG", "SET", "requirepass", "s3cret-pw")
            let url = "redis://:s3cret-pw@127.0.0.1:\(server.port)"
            let secured = RedisClient(configuration: .init(url: try RedisURL(url)))
            defer { secured.shutdown() }
            let store = JobQueue(redis: secured)
            let dump = try script("dump.sh", "cat > job.in; env > job.env")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dump-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let worker = ConveyorProcess(
                ["worker", "--exec", "dump=cd \(directory.path) && sh \(dump)", "--log-level", "error"],
                environment: ["REDIS_URL": url, "REDISCLI_AUTH": "s3cret-pw", "KEEP_ME": "yes"]
            )
            let payload = #"{"b":1.0,"a":"x/y","n":[1e2,-0]}"#
            let id = try await store.enqueue("dump", json: payload, options: JobOptions(id: "verbatim")).id
            let done = try await store.result(of: id, timeout: .seconds(60))
            #expect(done.status == .completed, "\(done.error ?? "") \(worker.output)")
            let input = try String(
                contentsOf: directory.appendingPathComponent("job.in"),
                encoding: .utf8
            )
            #expect(input.contains(#""payload":\#(payload)"#), "\(input)")
            let environment = try String(
                contentsOf: directory.appendingPathComponent("job.env"),
                encoding: .utf8
            )
            #expect(!environment.contains("s3cret-pw"), "\(environment)")
            #expect(!environment.contains("REDIS"))
            #expect(environment.contains("KEEP_ME=yes") && environment.contains("CONVEYOR_JOB_ID=\(id)"))
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit() == 0)
        }
    }

    @Test func aChildInheritsOnlyItsThreeStandardDescriptors() async throws {
        let ended = try await ChildProcess().run(
            ["/bin/sh", "-c", "exec ls /proc/self/fd"],
            input: [],
            environment: [:]
        )
        let descriptors = String(decoding: ended.output, as: UTF8.self).split(separator: "\n").map(String.init)
        // ls itself opens the directory it lists as descriptor 3.
        #expect(descriptors == ["0", "1", "2", "3"], "\(descriptors)")
    }

    @Test func aStopBeforeTheStartMeansItNeverStarts() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("started-\(UUID().uuidString)").path
        let child = ChildProcess()
        child.stop(killGrace: .seconds(1))
        let ended = try await child.run(["/bin/sh", "-c", "touch \(marker); sleep 30"], input: [], environment: [:])
        #expect(ended.signaled && ended.status == 128 + SIGTERM)
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func aCommandThatCannotStartIsAProcessFailure() async throws {
        let error = await #expect(throws: ConveyorError.self) {
            _ = try await ChildProcess().run(["/nonexistent/handler"], input: [], environment: [:])
        }
        #expect(error?.code == .processFailed)
        #expect(error?.message == "cannot start /nonexistent/handler: No such file or directory")
    }

    @Test func theExitStatusAndTheKillingSignalPassThroughTheSupervisor() async throws {
        let exited = try await ChildProcess().run(["/bin/sh", "-c", "exit 3"], input: [], environment: [:])
        #expect(exited.status == 3 && !exited.signaled)
        let killed = try await ChildProcess().run(["/bin/sh", "-c", "kill -9 $$"], input: [], environment: [:])
        #expect(killed.signaled && killed.status == 128 + 9)
    }
}
