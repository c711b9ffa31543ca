// swift-tools-version:6.0
import PackageDescription

// A server-style program embedding HARP the way another package would: a dependency by path
// (a versioned `.package(url:from:)` works the same, since HARP uses no unsafeFlags).
let package = Package(
    name: "EngineDemo",
    dependencies: [.package(name: "HARP", path: "../..")],
    targets: [
        .executableTarget(name: "EngineDemo", dependencies: [.product(name: "HARP", package: "HARP")]),
    ]
)
