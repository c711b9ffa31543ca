import Foundation
import HARP

/// Tiny decoder models with seeded random weights, written as real GGUF files with the
/// project's own writer, for the structural identity tests of every test target.
public struct TinyModelSpec: Sendable {
    public var architecture = "llama"
    public var layers = 3
    public var d = 64
    public var heads = 4
    public var kvHeads = 2
    public var headDim = 16
    public var ffn = 96
    public var vocab = 128
    public var context = 64
    public var seed: UInt64 = 1
    public var type: GGMLType = .f32
    /// Write per-layer values as arrays instead of scalars.
    public var perLayerArrays = false

    public init(architecture: String = "llama", layers: Int = 3, d: Int = 64, heads: Int = 4, kvHeads: Int = 2,
                headDim: Int = 16, ffn: Int = 96, vocab: Int = 128, context: Int = 64, seed: UInt64 = 1,
                type: GGMLType = .f32, perLayerArrays: Bool = false) {
        self.architecture = architecture
        self.layers = layers
        self.d = d
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.ffn = ffn
        self.vocab = vocab
        self.context = context
        self.seed = seed
        self.type = type
        self.perLayerArrays = perLayerArrays
    }
}

/// Deterministic pseudo-random numbers for test weights.
public struct TestRandom {
    private var generator: SplitMix64
    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in [-scale, scale).
    public mutating func float(_ scale: Float = 1) -> Float {
        (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * scale
    }

    public mutating func floats(_ n: Int, scale: Float) -> [Float] { (0..<n).map { _ in float(scale) } }
}

public enum TinyModel {
    /// A temporary directory removed when the process ends is not guaranteed; tests clean up with `defer`.
    public static func temporaryPath(_ name: String) -> String {
        try? FileManager.default.createDirectory(at: testsDirectory, withIntermediateDirectories: true)
        return testsDirectory.appendingPathComponent(uniqueName(name) + ".gguf").path
    }

    /// A new empty directory of its own, for tests that inspect everything a write left behind
    /// (tests run in parallel, so the shared directory holds other tests' files).
    public static func temporaryDirectory(_ name: String) throws -> String {
        let dir = testsDirectory.appendingPathComponent(uniqueName(name))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    /// This test process's directory for temporary files.
    private static var testsDirectory: URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("harp-tests-\(ProcessInfo.processInfo.processIdentifier)")
    }

    private static func uniqueName(_ name: String) -> String { "\(name)-\(UInt32.random(in: 0...UInt32.max))" }

    /// A writer holding a dense Llama-style model; callers may edit it before writing.
    public static func writer(_ s: TinyModelSpec) throws -> GGUFWriter {
        var rng = TestRandom(seed: s.seed)
        var w = GGUFWriter()
        let a = s.architecture
        w.set("general.architecture", .string(a))
        w.set("general.name", .string("tiny-\(s.seed)"))
        w.set("\(a).block_count", .uint32(UInt32(s.layers)))
        w.set("\(a).context_length", .uint32(UInt32(s.context)))
        w.set("\(a).embedding_length", .uint32(UInt32(s.d)))
        func perLayer(_ v: Int) -> GGUFValue {
            s.perLayerArrays ? .array(Array(repeating: .int32(Int32(v)), count: s.layers)) : .uint32(UInt32(v))
        }
        w.set("\(a).feed_forward_length", perLayer(s.ffn))
        w.set("\(a).attention.head_count", perLayer(s.heads))
        w.set("\(a).attention.head_count_kv", perLayer(s.kvHeads))
        w.set("\(a).attention.key_length", .uint32(UInt32(s.headDim)))
        w.set("\(a).attention.value_length", .uint32(UInt32(s.headDim)))
        w.set("\(a).rope.freq_base", .float32(10000))
        w.set("\(a).attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.set("\(a).vocab_size", .uint32(UInt32(s.vocab)))
        let scale: Float = 0.5 / Float(s.d).squareRoot() * 2
        func matrix(_ name: String, rows: Int, cols: Int) throws {
            try w.addTensor(name: name, shape: [cols, rows], type: s.type, floats: rng.floats(rows * cols, scale: scale * 1.7))
        }
        func norm(_ name: String) throws {
            try w.addTensor(name: name, shape: [s.d], type: .f32, floats: (0..<s.d).map { _ in 1 + rng.float(0.2) })
        }
        try w.addTensor(name: "token_embd.weight", shape: [s.d, s.vocab], type: s.type, floats: rng.floats(s.vocab * s.d, scale: 1))
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

    /// Writes the model to a temporary file and loads it.
    public static func load(_ writer: GGUFWriter, weights: WeightFormat = .native) throws -> (Model, String) {
        let path = temporaryPath("tiny")
        try writer.write(to: path)
        return (try Model(path: path, weights: weights), path)
    }
}

extension Array where Element == Float {
    /// Largest absolute elementwise difference.
    public func maxAbsDifference(_ other: [Float]) -> Float {
        precondition(count == other.count, "compared arrays differ in length")
        return zip(self, other).reduce(0) { Swift.max($0, abs($1.0 - $1.1)) }
    }
}
