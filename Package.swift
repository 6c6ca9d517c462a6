// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "conveyor",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "Conveyor", targets: ["Conveyor"]),
        .library(name: "ConveyorTesting", targets: ["ConveyorTesting"]),
        .executable(name: "conveyor", targets: ["conveyor"]),
        .executable(name: "conveyor-bench", targets: ["ConveyorBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // `conveyor serve` (dashboard, HTTP API, /metrics) and `conveyor worker --metrics-port`: Hummingbird is the
        // lightest full HTTP server among the packages this machine has (it brings swift-nio, which hiredis spared
        // us so far: about 3 minutes more of a first build). Prometheus text comes from swift-prometheus behind
        // swift-metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // TLS for rediss:// (hiredis 0.14 has none): the handshake and a relay thread per connection, in C on
        // OpenSSL 3 (Debian's libssl-dev).
        .target(
            name: "CConveyorTLS",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        .target(
            name: "RedisClient",
            dependencies: [
                "CHiredis",
                "CConveyorTLS",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "LocalRedis", dependencies: ["RedisClient"]),
        // Starts --exec handlers under a supervisor that kills them with their worker (fork and exec in C: nothing
        // between the two may allocate in a multithreaded process).
        .target(name: "CConveyorSpawn"),
        .target(
            name: "Conveyor",
            dependencies: [
                "RedisClient",
                "CConveyorSpawn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // HMAC-SHA-256 for serve's sign-in cookies, from OpenSSL's libcrypto (already linked for TLS).
        .target(name: "CConveyorCrypto", linkerSettings: [.linkedLibrary("crypto")]),
        .target(
            name: "ConveyorServe",
            dependencies: [
                "Conveyor",
                "CConveyorCrypto",
                "RedisClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ConveyorTesting",
            dependencies: [
                "Conveyor",
                "RedisClient",
                "LocalRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "conveyor",
            dependencies: [
                "Conveyor",
                "ConveyorServe",
                "RedisClient",
                "LocalRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "ConveyorBench",
            dependencies: [
                "Conveyor",
                "RedisClient",
                "LocalRedis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/ConveyorBench"
        ),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "ConveyorTesting"]),
        .testTarget(
            name: "ConveyorServeTests",
            dependencies: [
                "Conveyor",
                "ConveyorServe",
                "ConveyorTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "ConveyorTests",
            dependencies: [
                "Conveyor",
                "ConveyorTesting",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
    ]
)

let cTargets: Set<String> = ["CConveyorSpawn", "CConveyorTLS", "CConveyorCrypto"]
for target in package.targets where target.type != .system && !cTargets.contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
