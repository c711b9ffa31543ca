import Foundation
@testable import HARP
@testable import HARPPrune
import HARPTestSupport

/// Tiny dense Llama-style models with seeded random weights, written as GGUF files, for the
/// pruner's identity tests.
enum TinyDense {
    struct Shape {
        var layers = 3
        var d = 64
        var heads = 4
        var kvHeads = 2
        var headDim = 16
        var ffn = 128
        var vocab = 96
        var architecture = "llama"
    }

    static func temporaryPath(_ name: String) -> String { TinyModel.temporaryPath(name) }

    static func writer(_ s: Shape, seed: UInt64 = 7) throws -> GGUFWriter {
        var spec = TinyModelSpec()
        spec.architecture = s.architecture
        spec.layers = s.layers
        spec.d = s.d
        spec.heads = s.heads
        spec.kvHeads = s.kvHeads
        spec.headDim = s.headDim
        spec.ffn = s.ffn
        spec.vocab = s.vocab
        spec.context = 256
        spec.seed = seed
        return try TinyModel.writer(spec)
    }

    /// Writes and loads a tiny model; the caller removes the file.
    static func load(_ s: Shape = Shape(), seed: UInt64 = 7) throws -> (Model, String) {
        let path = temporaryPath("dense")
        try writer(s, seed: seed).write(to: path)
        return (try Model(path: path), path)
    }

    /// Seeded random calibration windows over the model's vocabulary.
    static func calibration(vocab: Int, windows: Int = 6, length: Int = 32, seed: UInt64 = 3) throws -> CalibrationSet {
        var random = SplitMix64(seed: seed)
        let w = (0..<windows).map { _ in (0..<length).map { _ in Int32(random.next() % UInt64(vocab)) } }
        return try CalibrationSet(windows: w, source: "random tokens")
    }
}

enum Logits {
    /// All-position logits of `tokens` through the full forward pass.
    static func of(_ model: Model, _ tokens: [Int32]) throws -> [Float] {
        let transformer = Transformer(model: model, pool: ComputePool(threads: 2))
        let cache = try KVCache(config: model.config, contextLength: 64, type: .f32)
        return try transformer.forward(Batch(tokens: tokens, startPosition: 0, allLogits: true), cache: cache)
    }
}

/// The built `harp-prune` next to the test bundle, and the package's real-model fixtures.
enum PruneFixtures {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let smolLM2Path = packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var hasSmolLM2: Bool { FileManager.default.fileExists(atPath: smolLM2Path) }
    static let wikiValidPath = packageRoot.appendingPathComponent("Benchmarks/data/wikitext-2-raw/wiki.valid.raw").path

    static var harpPrunePath: String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "")
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("harp-prune").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs harp-prune and returns its exit status and stderr.
    static func runPrune(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        guard let path = harpPrunePath else { throw CocoaError(.fileNoSuchFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = packageRoot
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
