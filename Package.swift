// swift-tools-version:6.0
import PackageDescription

// Layering (see README): CKernels (C, SIMD, threads) → HARP (format → model → inference →
// generation) → HARPPrune, HARPServer → the harp-run / harp-prune command-line tools.
// No target uses unsafeFlags: CPU-specific code is selected at run time inside CKernels, so HARP
// can be a versioned dependency of other packages.
let package = Package(
    name: "HARP",
    products: [
        .library(name: "HARP", targets: ["HARP"]),
        .library(name: "HARPPrune", targets: ["HARPPrune"]),
        .executable(name: "harp-run", targets: ["harp-run"]),
        .executable(name: "harp-prune", targets: ["harp-prune"]),
    ],
    targets: [
        .target(
            name: "CKernels",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("openblas"), .linkedLibrary("pthread"), .linkedLibrary("m")]
        ),
        .target(name: "CSentencePiece", linkerSettings: [.linkedLibrary("sentencepiece")]),
        .target(name: "HARP", dependencies: ["CKernels", "CSentencePiece"]),
        .target(name: "HARPPrune", dependencies: ["HARP", "CKernels"]),
        .target(name: "HARPCommandLine", dependencies: ["HARP"]),
        // The OpenAI-compatible HTTP server over an Engine (`harp-run serve`).
        .target(name: "HARPServer", dependencies: ["HARP"]),
        .executableTarget(name: "harp-run", dependencies: ["HARP", "HARPCommandLine", "HARPServer"]),
        .executableTarget(name: "harp-prune", dependencies: ["HARPPrune", "HARPCommandLine"]),
        // Tiny random-weight models written as GGUF files, shared by the test targets.
        .target(name: "HARPTestSupport", dependencies: ["HARP"], path: "Tests/HARPTestSupport"),
        .testTarget(name: "HARPTests", dependencies: ["HARP", "HARPServer", "CKernels", "HARPTestSupport"]),
        .testTarget(name: "HARPPruneTests", dependencies: ["HARPPrune", "HARP", "HARPTestSupport"]),
    ],
    cxxLanguageStandard: .cxx17
)
