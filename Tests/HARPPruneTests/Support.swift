import Foundation
@testable import HARP
@testable import HARPPrune

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

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("harp-prune-tests-\(ProcessInfo.processInfo.processIdentifier)-\(name)-\(UInt32.random(in: 0...UInt32.max)).gguf").path
    }

    static func writer(_ s: Shape, seed: UInt64 = 7) throws -> GGUFWriter {
        var random = SplitMix64(seed: seed)
        func uniform(_ n: Int, scale: Float) -> [Float] {
            (0..<n).map { _ in
                let unit = Float(random.next() >> 40) / Float(1 << 24)
                return (unit * 2 - 1) * scale
            }
        }
        var w = GGUFWriter()
        let a = s.architecture
        w.set("general.architecture", .string(a))
        w.set("\(a).block_count", .uint32(UInt32(s.layers)))
        w.set("\(a).context_length", .uint32(256))
        w.set("\(a).embedding_length", .uint32(UInt32(s.d)))
        w.set("\(a).feed_forward_length", .uint32(UInt32(s.ffn)))
        w.set("\(a).attention.head_count", .uint32(UInt32(s.heads)))
        w.set("\(a).attention.head_count_kv", .uint32(UInt32(s.kvHeads)))
        w.set("\(a).attention.key_length", .uint32(UInt32(s.headDim)))
        w.set("\(a).attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.set("\(a).vocab_size", .uint32(UInt32(s.vocab)))
        let scale = 1.7 / Float(s.d).squareRoot()
        func matrix(_ name: String, rows: Int, cols: Int) throws {
            try w.addTensor(name: name, shape: [cols, rows], type: .f32, floats: uniform(rows * cols, scale: scale))
        }
        func norm(_ name: String) throws {
            try w.addTensor(name: name, shape: [s.d], type: .f32, floats: uniform(s.d, scale: 0.2).map { 1 + $0 })
        }
        try w.addTensor(name: "token_embd.weight", shape: [s.d, s.vocab], type: .f32, floats: uniform(s.vocab * s.d, scale: 1))
        for l in 0..<s.layers {
            let p = "blk.\(l)."
            try norm(p + "attn_norm.weight")
            try matrix(p + "attn_q.weight", rows: s.heads * s.headDim, cols: s.d)
            try matrix(p + "attn_k.weight", rows: s.kvHeads * s.headDim, cols: s.d)
            try matrix(p + "attn_v.weight", rows: s.kvHeads * s.headDim, cols: s.d)
            try matrix(p + "attn_output.weight", rows: s.d, cols: s.heads * s.headDim)
            try norm(p + "ffn_norm.weight")
            try matrix(p + "ffn_gate.weight", rows: s.ffn, cols: s.d)
            try matrix(p + "ffn_up.weight", rows: s.ffn, cols: s.d)
            try matrix(p + "ffn_down.weight", rows: s.d, cols: s.ffn)
        }
        try norm("output_norm.weight")
        return w
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

extension Array where Element == Float {
    func maxAbsDifference(_ other: [Float]) -> Float {
        guard count == other.count else { return .infinity }
        return zip(self, other).reduce(0) { Swift.max($0, abs($1.0 - $1.1)) }
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
