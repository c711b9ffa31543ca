/// Whether the files of a family hold a tensor.
public enum Presence: Sendable, Equatable {
    case required, optional, absent
}

/// A tensor a model file may hold: its name, GGUF shape, role and whether the family requires it.
public struct TensorSlot: Sendable, Equatable {
    public enum Role: Sendable, Equatable, Hashable {
        case tokenEmbedding, outputNorm, output, ropeFrequencies
        case layer(Int, LayerTensor)
    }
    public let role: Role
    public let name: String
    /// GGUF order: [cols, rows] for a matrix of `rows` outputs, [count] for a vector.
    public let shape: [Int]
    public let presence: Presence

    public var isMatrix: Bool {
        switch role {
        case .tokenEmbedding, .output: return true
        case .outputNorm, .ropeFrequencies: return false
        case .layer(_, let t): return t.isMatrix
        }
    }
}

/// One architecture's GGUF layout, declared once and used both ways: the loader reads a file with
/// it (and rejects a tensor no slot claims), `ModelWriter` writes with it (and refuses a tensor the
/// target layout has no slot for), `harp-run inspect` and the tests' tiny-model builder list it.
/// Each supported architecture declares one in its own file under `Architectures/`.
public struct ArchitectureSchema: Sendable {
    /// The GGUF `general.architecture`.
    public let name: String
    var ropeLayout: RopeLayout
    var activation: GateActivation = .silu
    /// Embeddings are multiplied by √d (Gemma).
    var scalesEmbedding = false
    var defaultNormEpsilon: Float = 1e-5
    /// `attn_q/k/v.bias` of full-attention layers (Qwen2: required; Llama: optional).
    var attentionBiases: Presence = .optional
    /// `attn_q_norm` / `attn_k_norm` (Gemma 3).
    var queryKeyNorms: Presence = .absent
    /// `post_attention_norm` / `post_ffw_norm` after every block (Gemma 2/3).
    var sandwichNorms = false
    /// `rope_freqs.weight`: Llama 3.1/3.2's per-pair RoPE frequency divisors.
    var ropeFrequencyFactors: Presence = .absent
    /// `attn_output.bias` of layers without full attention (the pruner's compensation). llama.cpp's
    /// deci graph adds it only after full attention, so that layout has no slot for it.
    var prunedOutputBias: Presence = .optional
    /// Without `harp.attention.kind`, `head_count = 0` marks an attention-free layer and
    /// `head_count_kv = 0` a linear one (llama.cpp's deci convention); elsewhere they are errors.
    var zeroHeadCountsMarkPrunedLayers = false
    /// Family keys read after the common ones (sliding windows, soft-caps, ...).
    var readKeys: (@Sendable (inout ModelConfig, ModelMetadata) throws -> Void)? = nil
    /// The inverse of `readKeys`: the same settings as `<arch>.` key suffixes and values.
    var writeKeys: (@Sendable (ModelConfig) throws -> [(String, GGUFValue)])? = nil

    /// Architectures this runtime reads and writes, by GGUF `general.architecture`.
    public static let all: [String: ArchitectureSchema] = [
        "llama": .llama, "deci": .deci, "gemma2": .gemma2, "gemma3": .gemma3, "qwen2": .qwen2,
    ]

    public static func named(_ name: String) -> ArchitectureSchema? { all[name] }

    /// Every tensor a file of this architecture with structure `config` may hold, in file order
    /// (embedding, layers, output norm, output, RoPE factors).
    public func tensorSlots(_ config: ModelConfig) -> [TensorSlot] {
        let d = config.embeddingLength, vocab = config.vocabularySize
        var slots = [TensorSlot(role: .tokenEmbedding, name: "token_embd.weight", shape: [d, vocab], presence: .required)]
        for (l, spec) in config.layers.enumerated() { slots += layerSlots(spec, layer: l, d: d) }
        slots.append(TensorSlot(role: .outputNorm, name: "output_norm.weight", shape: [d], presence: .required))
        slots.append(TensorSlot(role: .output, name: "output.weight", shape: [d, vocab], presence: .optional))
        if ropeFrequencyFactors != .absent {
            slots.append(TensorSlot(role: .ropeFrequencies, name: "rope_freqs.weight", shape: [config.ropeDimensions / 2],
                                    presence: ropeFrequencyFactors))
        }
        return slots
    }

    /// The tensors of layer `layer` with structure `spec`.
    public func layerSlots(_ spec: LayerSpec, layer l: Int, d: Int) -> [TensorSlot] {
        var slots: [TensorSlot] = []
        func add(_ t: LayerTensor, _ shape: [Int], _ presence: Presence = .required) {
            guard presence != .absent else { return }
            slots.append(TensorSlot(role: .layer(l, t), name: t.name(layer: l), shape: shape, presence: presence))
        }
        let post: Presence = sandwichNorms ? .required : .absent
        let valueBias: Presence = attentionBiases == .absent ? .absent : .optional
        switch spec.attention {
        case .full(let heads, let kvHeads, let headDim):
            let q = heads * headDim, kv = kvHeads * headDim
            add(.attentionNorm, [d])
            add(.query, [d, q]); add(.key, [d, kv]); add(.value, [d, kv]); add(.output, [q, d])
            add(.queryBias, [q], attentionBiases); add(.keyBias, [kv], attentionBiases); add(.valueBias, [kv], attentionBiases)
            add(.outputBias, [d], .optional)
            add(.queryNorm, [headDim], queryKeyNorms); add(.keyNorm, [headDim], queryKeyNorms)
            add(.postAttentionNorm, [d], post)
        case .valueOnly(let kvHeads, let headDim):
            let kv = kvHeads * headDim
            add(.attentionNorm, [d])
            add(.value, [d, kv]); add(.output, [kv, d]); add(.valueBias, [kv], valueBias)
            add(.outputBias, [d], prunedOutputBias)
            add(.postAttentionNorm, [d], post)
        case .linear:
            add(.attentionNorm, [d])
            add(.output, [d, d])
            add(.outputBias, [d], prunedOutputBias)
            add(.postAttentionNorm, [d], post)
        case .none:
            add(.outputBias, [d], prunedOutputBias)
        }
        if spec.ffnWidth > 0 {
            let f = spec.ffnWidth
            add(.ffnNorm, [d])
            add(.gate, [d, f]); add(.up, [d, f]); add(.down, [f, d])
            add(.downBias, [d], .optional)
            add(.postFFNNorm, [d], post)
        }
        return slots
    }

    /// What the slots say about a model's structure flags (the loader's config).
    var hasQueryKeyNorms: Bool { queryKeyNorms == .required }
}
