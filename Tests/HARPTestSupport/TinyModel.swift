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

/// Tiny loadable models of every supported family, each with every metadata key its loader reads
/// (optional ones included) and a byte-level GPT-2 tokenizer, for the hostile-metadata tests and
/// the fuzz seed corpus.
public enum TinyFamily {
    public static let families = ["llama", "qwen2", "gemma2", "gemma3", "deci"]

    /// A byte-level vocabulary (the 256 GPT-2 byte symbols), one merge and `<|im_end|>`.
    public static func tokenizerMetadata() -> [(String, GGUFValue)] {
        // GPT-2's printable byte mapping: printable Latin-1 bytes stand for themselves, the others
        // for 256 + n in order.
        var extra: UInt32 = 0
        let symbols = (0..<256).map { byte -> String in
            let b = UInt32(byte)
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) { return String(Unicode.Scalar(b)!) }
            defer { extra += 1 }
            return String(Unicode.Scalar(256 + extra)!)
        }
        let tokens = symbols + ["ab", "<|im_end|>"]
        return [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(Array(repeating: .int32(1), count: 257) + [.int32(3)])),
            ("tokenizer.ggml.merges", .array([.string("a b")])),
            ("tokenizer.ggml.bos_token_id", .uint32(257)),
            ("tokenizer.ggml.eos_token_id", .uint32(257)),
            ("tokenizer.ggml.add_bos_token", .bool(false)),
        ]
    }

    public static let vocabularySize = 258

    /// A writer of a tiny `family` model: 3 layers (6 for Gemma, whose layers alternate local and
    /// global), d = 64, 4 heads of 16, 2 KV heads, FFN 96.
    public static func writer(_ family: String, seed: UInt64 = 1, shape: (inout TinyModelSpec) -> Void = { _ in }) throws -> GGUFWriter {
        let gemma = family.hasPrefix("gemma")
        var spec = TinyModelSpec(architecture: family, layers: gemma ? 6 : 3, vocab: vocabularySize, context: 128, seed: seed)
        spec.perLayerArrays = family == "deci"
        shape(&spec)
        var w = try TinyModel.writer(spec)
        var rng = TestRandom(seed: seed &+ 100)
        func vector(_ name: String, _ n: Int, around center: Float) throws {
            try w.addTensor(name: name, shape: [n], type: .f32, floats: (0..<n).map { _ in center + rng.float(0.1) })
        }
        let a = family
        w.set("\(a).rope.dimension_count", .uint32(UInt32(spec.headDim)))
        for (key, value) in tokenizerMetadata() { w.set(key, value) }
        switch family {
        case "qwen2":
            for l in 0..<spec.layers {
                try vector("blk.\(l).attn_q.bias", spec.heads * spec.headDim, around: 0)
                try vector("blk.\(l).attn_k.bias", spec.kvHeads * spec.headDim, around: 0)
                try vector("blk.\(l).attn_v.bias", spec.kvHeads * spec.headDim, around: 0)
            }
            w.set("\(a).rope.scale_linear", .float32(1))
        case "gemma2", "gemma3":
            for l in 0..<spec.layers {
                try vector("blk.\(l).post_attention_norm.weight", spec.d, around: 1)
                try vector("blk.\(l).post_ffw_norm.weight", spec.d, around: 1)
                if family == "gemma3" {
                    try vector("blk.\(l).attn_q_norm.weight", spec.headDim, around: 1)
                    try vector("blk.\(l).attn_k_norm.weight", spec.headDim, around: 1)
                }
            }
            w.set("\(a).attention.sliding_window", .uint32(8))
            w.set("\(a).attention.sliding_window_pattern", .uint32(3))
            w.set("\(a).rope.freq_base_swa", .float32(10_000))
            w.set("\(a).attn_logit_softcapping", .float32(50))
            w.set("\(a).final_logit_softcapping", .float32(30))
        default:
            w.set("\(a).rope.scale_linear", .float32(1))
        }
        return w
    }
}
