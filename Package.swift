// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "relay-milter",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "relay-milter", targets: ["relay-milter"]),
        // For the libFuzzer targets in Tests/Fuzz, a package of their own.
        .library(name: "RelayPolicy", targets: ["RelayPolicy"]),
        .library(name: "RelayProbe", targets: ["RelayProbe"]),
        .library(name: "RelayConfig", targets: ["RelayConfig"]),
        .library(name: "RelayMilter", targets: ["RelayMilter"]),
        .library(name: "DNSBL", targets: ["DNSBL"]),
    ],
    traits: [
        // The fleet's shared verdict store. Off, the PostgreSQL client and its
        // TLS stack (swift-nio-ssl, swift-crypto, BoringSSL) are not built, and
        // a config that asks for `backend = "postgresql"` is refused at its
        // line. The sanitizer builds, whose suites never reach PostgreSQL,
        // leave it out (Scripts/sanitizers): the address build took 156 s cold
        // instead of about 290 s on a 2-core machine.
        .trait(name: "PostgreSQL", description: "The fleet's shared verdict store in PostgreSQL ([cache] backend = \"postgresql\")"),
        .default(enabledTraits: ["PostgreSQL"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.25.0"),
        // SHA-256 of a trapped message's body (the trap's fingerprint of a campaign).
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // libmilter as Debian's libmilter-dev ships it (milter.pc).
        .systemLibrary(
            name: "CMilter",
            path: "CShim/CMilter",
            pkgConfig: "milter",
            providers: [.apt(["libmilter-dev"])]
        ),
        // The few C helpers Swift cannot do without: see CShim/CMilterShim/include/CMilterShim.h.
        .target(
            name: "CMilterShim",
            dependencies: ["CMilter"],
            path: "CShim/CMilterShim",
            cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])],
            linkerSettings: [.linkedLibrary("milter"), .linkedLibrary("pthread")]
        ),
        // Pure relay rules: values in, decisions out. No C, no I/O, no logging.
        .target(name: "RelayPolicy"),
        // Anonymous-mode open-relay tests: the state machine, its replies and verdicts. No I/O.
        .target(name: "RelayProbe"),
        // NIO moving the bytes of those tests: a connection per test, the state machine's driver.
        .target(
            name: "RelayProbeNIO",
            dependencies: [
                "RelayProbe",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Verdict records in and out of an embedded SQLite database (WAL).
        .target(name: "VerdictStore", dependencies: ["RelayProbe", .product(name: "GRDB", package: "GRDB.swift")]),
        // The same records shared by a fleet of instances through PostgreSQL.
        .target(
            name: "SharedVerdictStore",
            dependencies: [
                "VerdictStore",
                .product(name: "PostgresNIO", package: "postgres-nio", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl", condition: .when(traits: ["PostgreSQL"])),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // DNS blocklist lookups: the DNS query and answer codec. No I/O.
        .target(name: "DNSBL"),
        // NIO moving those queries and answers over UDP.
        .target(
            name: "DNSBLNIO",
            dependencies: [
                "DNSBL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Where libmilter listens (unix:, inet:, inet6:), as a plain value: the
        // config parses it without linking libmilter, MilterKit listens on it.
        .target(name: "MilterSocket"),
        // The only module that touches libmilter.
        .target(
            name: "MilterKit",
            dependencies: ["CMilter", "CMilterShim", "MilterSocket", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),
        // The config file as validated values: loading, rendering, the manual's key list. No I/O beyond reading the file.
        .target(
            name: "RelayConfig",
            dependencies: [
                "RelayPolicy",
                "RelayProbe",
                "MilterSocket",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The application: sessions, tests, caches, service wiring.
        .target(
            name: "RelayMilter",
            dependencies: [
                "RelayConfig",
                "RelayPolicy",
                "MilterKit",
                "MilterSocket",
                "RelayProbe",
                "RelayProbeNIO",
                "VerdictStore",
                "SharedVerdictStore",
                "DNSBL",
                "DNSBLNIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "relay-milter",
            dependencies: [
                "RelayConfig",
                "RelayMilter",
                "RelayProbe",
                "RelayProbeNIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Benchmarks print figures; they assert nothing about speed.
        .executableTarget(
            name: "verdict-cache-bench",
            dependencies: ["RelayMilter", "RelayPolicy", "VerdictStore"],
            path: "Benchmarks/VerdictCacheBench"
        ),
        .executableTarget(
            name: "log-line-bench",
            dependencies: ["RelayMilter", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/LogLineBench"
        ),
        .executableTarget(
            name: "milter-load",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/MilterLoad"
        ),
        .testTarget(name: "RelayPolicyTests", dependencies: ["RelayPolicy"]),
        .testTarget(name: "MilterKitTests", dependencies: ["MilterKit", "MilterSocket"]),
        // Fixtures: databases as earlier releases wrote them, read by path (#filePath), not as resources.
        .testTarget(name: "VerdictStoreTests", dependencies: ["VerdictStore"], exclude: ["Fixtures"]),
        .testTarget(name: "DNSBLTests", dependencies: ["DNSBL", "DNSBLNIO", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "RelayProbeTests", dependencies: ["RelayProbe"]),
        .testTarget(name: "RelayMilterTests", dependencies: ["MilterSocket", "RelayConfig", "RelayMilter", "RelayPolicy", "RelayProbe", "RelayProbeNIO", "VerdictStore", .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
