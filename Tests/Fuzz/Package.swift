// swift-tools-version:6.0
// libFuzzer targets, built apart from the main package so that ordinary builds
// never carry fuzzer instrumentation. Built and run by Scripts/fuzz:
//   swift build --package-path Tests/Fuzz -Xswiftc -sanitize=fuzzer,address
// Each main.swift hands its check to LLVMFuzzerRunDriver (SwiftPM's own main
// rules out libFuzzer's).
import PackageDescription

let package = Package(
    name: "relay-milter-fuzz",
    dependencies: [.package(name: "relay-milter", path: "../..")],
    targets: [
        .target(name: "CLibFuzzer"),
        // The address parser and the relay classifier.
        .executableTarget(name: "fuzz-address", dependencies: ["CLibFuzzer", .product(name: "RelayPolicy", package: "relay-milter")]),
        // SMTP reply assembly and the open-relay test state machine.
        .executableTarget(name: "fuzz-smtp-reply", dependencies: ["CLibFuzzer", .product(name: "RelayProbe", package: "relay-milter")]),
        // DNS answers to blocklist queries.
        .executableTarget(name: "fuzz-dns-answer", dependencies: ["CLibFuzzer", .product(name: "DNSBL", package: "relay-milter")]),
        // The config loader.
        .executableTarget(name: "fuzz-config", dependencies: ["CLibFuzzer", .product(name: "RelayConfig", package: "relay-milter")]),
    ],
    swiftLanguageModes: [.v6]
)
