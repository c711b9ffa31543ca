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

    /// The structure of `s` as a `ModelConfig` (every layer full attention with a gated MLP):
    /// start here to build a tiny model of another configuration, edit, and pass it to
    /// `writer(config:)`.
    public static func config(_ s: TinyModelSpec) -> ModelConfig {
        ModelConfig(architecture: s.architecture, embeddingLength: s.d, vocabularySize: s.vocab, contextLength: s.context,
                    layers: (0..<s.layers).map { _ in
                        LayerSpec(attention: .full(heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim), ffnWidth: s.ffn, ropeBase: 10_000)
                    },
                    normEpsilon: 1e-5, ropeDimensions: s.headDim, ropeLayout: .normal, tiedOutput: true)
    }

    /// A writer holding a dense model of `s`; callers may edit it before writing. The family's
    /// own keys are left to the family's defaults (Gemma 2's soft-caps, ...).
    public static func writer(_ s: TinyModelSpec) throws -> GGUFWriter {
        var w = try writer(config: config(s), seed: s.seed, type: s.type, familyKeys: false)
        w.set("general.name", .string("tiny-\(s.seed)"))
        if !s.perLayerArrays {
            let a = s.architecture
            w.set("\(a).feed_forward_length", .uint32(UInt32(s.ffn)))
            w.set("\(a).attention.head_count", .uint32(UInt32(s.heads)))
            w.set("\(a).attention.head_count_kv", .uint32(UInt32(s.kvHeads)))
        }
        return w
    }

    /// A model of any supported architecture and structure with seeded random weights: the keys
    /// `ModelWriter` writes for `config` and every tensor the architecture's schema requires,
    /// plus the optional layer tensors named in `optional` (biases, ...) where the layer has a
    /// slot for them, an untied `output.weight` when `config.tiedOutput` is false, and
    /// `rope_freqs.weight` when `ropeFrequencyFactors` is given. `tokenizer` copies a real
    /// vocabulary's `tokenizer.*` keys (the vocabulary size must match `config`).
    /// `familyKeys: false` leaves the family's own keys (soft-caps, windows) unset.
    public static func writer(config: ModelConfig, seed: UInt64 = 1, type: GGMLType = .f32,
                              optional: Set<LayerTensor> = [], ropeFrequencyFactors: [Float]? = nil,
                              tokenizer: GGUFFile? = nil, familyKeys: Bool = true) throws -> GGUFWriter {
        guard let schema = ArchitectureSchema.named(config.architecture) else {
            throw HARPError.invalidArgument("no schema for architecture \(config.architecture)")
        }
        var rng = TestRandom(seed: seed)
        var w = GGUFWriter()
        if let tokenizer { w.copyMetadata(from: tokenizer) { !$0.hasPrefix("tokenizer.") } }
        try ModelWriter.writeStructure(config, into: &w)
        let a = config.architecture
        if !familyKeys {
            for key in w.metadata.map(\.key) where key.hasPrefix("\(a).") && !commonKeys.contains(String(key.dropFirst(a.count + 1))) {
                w.remove(key)
            }
        }
        if config.layers.allSatisfy({ $0.attention.needsKVCache }) { w.remove("harp.attention.kind") }
        w.set("general.name", .string("tiny-\(seed)"))
        let d = config.embeddingLength
        let scale: Float = 0.5 / Float(d).squareRoot() * 2
        let slots = schema.tensorSlots(config)
        // Biases and query/key norms come in groups: asking for one member asks for its group.
        let groups: [Set<LayerTensor>] = [[.queryBias, .keyBias, .valueBias], [.queryNorm, .keyNorm]]
        func wanted(_ role: LayerTensor, layer: Int) -> Bool {
            if optional.contains(role) { return true }
            guard let group = groups.first(where: { $0.contains(role) }) else { return false }
            let present = Set(slots.compactMap { slot -> LayerTensor? in
                if case .layer(layer, let t) = slot.role, group.contains(t) { return t }
                return nil
            })
            return present == group && !present.isDisjoint(with: optional)
        }
        for slot in slots {
            let floats: [Float]
            switch slot.role {
            case .tokenEmbedding:
                floats = rng.floats(slot.shape.reduce(1, *), scale: 1)
            case .output:
                guard !config.tiedOutput else { continue }
                floats = rng.floats(slot.shape.reduce(1, *), scale: scale * 1.7)
            case .outputNorm:
                floats = (0..<slot.shape[0]).map { _ in 1 + rng.float(0.2) }
            case .ropeFrequencies:
                guard let ropeFrequencyFactors else { continue }
                floats = ropeFrequencyFactors
            case .layer(let l, let role):
                guard slot.presence == .required || wanted(role, layer: l) else { continue }
                if role.isMatrix {
                    floats = rng.floats(slot.shape.reduce(1, *), scale: scale * 1.7)
                } else if role.rawValue.hasSuffix(".bias") {
                    floats = rng.floats(slot.shape[0], scale: 0.1)
                } else {
                    floats = (0..<slot.shape[0]).map { _ in 1 + rng.float(0.2) }
                }
            }
            try w.addTensor(name: slot.name, shape: slot.shape, type: slot.isMatrix ? type : .f32, floats: floats)
        }
        return w
    }

    /// The structural keys every family shares (suffixes after `<arch>.`).
    private static let commonKeys: Set<String> = [
        "block_count", "context_length", "embedding_length", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "attention.key_length", "attention.value_length", "attention.layer_norm_rms_epsilon",
        "rope.freq_base", "rope.dimension_count", "rope.scale_linear", "vocab_size",
    ]

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

extension LayerWeights {
    /// Test convenience: the projections of a full-attention layer, which the test knows it has.
    public var full: FullAttentionWeights {
        get {
            guard case .full(_, let p) = attention else { preconditionFailure("not a full-attention layer") }
            return p
        }
        set {
            guard case .full(let frame, _) = attention else { preconditionFailure("not a full-attention layer") }
            attention = .full(frame, newValue)
        }
    }

    /// Test convenience: the attention block's norm/bias frame, which the test knows it has.
    public var frame: BlockFrame {
        get {
            guard let f = attention.frame else { preconditionFailure("no attention block") }
            return f
        }
        set { attention.frame = newValue }
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
        // The builder lays out every tensor the family's schema requires (Qwen2's Q/K/V biases,
        // Gemma's post-norms and query/key norms).
        var w = try TinyModel.writer(spec)
        let a = family
        w.set("\(a).rope.dimension_count", .uint32(UInt32(spec.headDim)))
        for (key, value) in tokenizerMetadata() { w.set(key, value) }
        switch family {
        case "gemma2", "gemma3":
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
