/// What distinguishes one decoder-only architecture from another when reading its GGUF file.
/// Each supported architecture declares one of these in its own file under `Architectures/`.
struct ArchitectureTraits: Sendable {
    var ropeLayout: RopeLayout
    var activation: GateActivation = .silu
    /// Q/K/V biases are part of the architecture (Qwen2); otherwise they are optional.
    var attentionBiases = false
    /// Embeddings are multiplied by √d (Gemma).
    var scalesEmbedding = false
    var sandwichNorms = false
    var queryKeyNorms = false
    var defaultNormEpsilon: Float = 1e-5
    /// The file may carry `rope_freqs.weight` (Llama 3.1/3.2's per-pair frequency divisors).
    var ropeFrequencyFactors = false
    /// Family-specific settings read after the common ones (sliding windows, soft-capping, ...).
    var customize: (@Sendable (inout ModelConfig, ModelMetadata) throws -> Void)? = nil
}

/// Reads the common decoder-only structure (llama.cpp's key and tensor names) of any
/// architecture in `ModelLoader.architectures`.
enum DecoderLoader {
    static func load(metadata meta: ModelMetadata, traits: ArchitectureTraits,
                     tensors: TensorLoader) throws -> (ModelConfig, ModelWeights) {
        let config = try readConfig(meta, traits: traits)
        let weights = try readWeights(config, traits: traits, tensors: tensors)
        return (config, weights)
    }

    static func readConfig(_ meta: ModelMetadata, traits: ArchitectureTraits) throws -> ModelConfig {
        let layerCount = try meta.int("block_count")
        guard (1...4096).contains(layerCount) else { throw meta.fail("\(meta.architecture).block_count is \(layerCount)") }
        let d = try meta.int("embedding_length")
        guard d > 0 else { throw meta.fail("\(meta.architecture).embedding_length is \(d)") }
        let heads = try meta.perLayerInts("attention.head_count", layers: layerCount)
        let kvHeads = try meta.perLayerInts("attention.head_count_kv", layers: layerCount, default: -1)
            .enumerated().map { $1 < 0 ? heads[$0] : $1 }
        let ffn = try meta.perLayerInts("feed_forward_length", layers: layerCount)
        let kinds = try meta.harpStrings("harp.attention.kind", layers: layerCount)

        // Head dimension: explicit key when present; otherwise llama.cpp's rule d / heads (of a layer with heads).
        let headDim: Int
        if let explicit = try meta.optionalInt("attention.key_length") {
            headDim = explicit
        } else if let h = heads.first(where: { $0 > 0 }), d % h == 0 {
            headDim = d / h
        } else {
            throw meta.fail("missing metadata key \(meta.architecture).attention.key_length")
        }
        guard headDim > 0 else { throw meta.fail("\(meta.architecture).attention.key_length is \(headDim)") }
        if let valueLength = try meta.optionalInt("attention.value_length"), valueLength != headDim {
            throw meta.fail("\(meta.architecture).attention.value_length \(valueLength) differs from key_length \(headDim), which is not supported")
        }

        let ropeBase = try meta.float("rope.freq_base", default: 10_000)
        var layers: [LayerSpec] = []
        for l in 0..<layerCount {
            let attention: AttentionKind
            switch kinds?[l] {
            case nil:
                // llama.cpp convention (deci): no heads → no attention; heads but no KV heads → linear.
                if heads[l] == 0 { attention = .none }
                else if kvHeads[l] == 0 { attention = .linear }
                else { attention = .full(heads: heads[l], kvHeads: kvHeads[l], headDim: headDim) }
            case "full": attention = .full(heads: heads[l], kvHeads: kvHeads[l], headDim: headDim)
            case "value-only": attention = .valueOnly(kvHeads: kvHeads[l], headDim: headDim)
            case "linear": attention = .linear
            case "none": attention = .none
            case let other?:
                throw meta.fail("layer \(l): harp.attention.kind '\(other)' is not one of full, value-only, linear, none")
            }
            switch attention {
            case .full(let h, let kv, _):
                guard h > 0, kv > 0, h % kv == 0 else {
                    throw meta.fail("layer \(l): head_count \(h) is not a positive multiple of head_count_kv \(kv)")
                }
            case .valueOnly(let kv, _):
                guard kv > 0 else { throw meta.fail("layer \(l): value-only attention needs head_count_kv > 0") }
            case .linear, .none: break
            }
            layers.append(LayerSpec(attention: attention, ffnWidth: ffn[l], attentionBiases: traits.attentionBiases,
                                    ropeBase: ropeBase))
        }

        let vocab: Int
        if let v = try meta.optionalInt("vocab_size") { vocab = v }
        else if let tokens = meta.file.metadata["tokenizer.ggml.tokens"]?.arrayValue { vocab = tokens.count }
        else if let embd = meta.file.tensor(named: "token_embd.weight"), embd.shape.count >= 2 { vocab = embd.shape[1] }
        else { throw meta.fail("cannot determine the vocabulary size (no \(meta.architecture).vocab_size)") }

        var config = ModelConfig(
            architecture: meta.architecture,
            embeddingLength: d,
            vocabularySize: vocab,
            contextLength: try meta.optionalInt("context_length") ?? 2048,
            layers: layers,
            normEpsilon: try meta.float("attention.layer_norm_rms_epsilon", default: traits.defaultNormEpsilon),
            ropeDimensions: try meta.optionalInt("rope.dimension_count") ?? headDim,
            ropeFreqScale: try ropeFrequencyScale(meta),
            ropeLayout: traits.ropeLayout,
            activation: traits.activation,
            tiedOutput: meta.file.tensor(named: "output.weight") == nil,
            embeddingScale: traits.scalesEmbedding ? Float(d).squareRoot() : 1,
            sandwichNorms: traits.sandwichNorms,
            queryKeyNorms: traits.queryKeyNorms)
        guard config.ropeDimensions > 0, config.ropeDimensions <= headDim, config.ropeDimensions % 2 == 0 else {
            throw meta.fail("\(meta.architecture).rope.dimension_count \(config.ropeDimensions) does not fit head dimension \(headDim)")
        }
        try traits.customize?(&config, meta)
        return config
    }

    /// RoPE frequency scaling as llama.cpp reads it (`llama_model_base::load_hparams`, then the
    /// context): `rope.scaling.type` defaults to linear, whose scale is 1 / `rope.scaling.factor`
    /// (or the older `rope.scale_linear`; 0 or absent: 1); `none` never scales. YaRN and LongRoPE
    /// need extrapolation mixing and magnitude scaling this runtime does not implement, so they
    /// are refused, as is any type llama.cpp does not know (it aborts on those). Llama 3.1's
    /// "llama3" scaling has no key: the converter bakes it into `rope_freqs.weight`.
    static func ropeFrequencyScale(_ meta: ModelMetadata) throws -> Float {
        let typeKey = "\(meta.architecture).rope.scaling.type"
        let type: String
        if let value = meta["rope.scaling.type"] {
            guard let string = value.stringValue else { throw meta.fail("metadata key \(typeKey) must be a string, got \(value.summary)") }
            type = string
        } else {
            type = "linear"
        }
        if let attn = try meta.optionalFloat("rope.scaling.attn_factor"), attn != 1 {
            throw meta.fail("metadata key \(meta.architecture).rope.scaling.attn_factor = \(attn) is not supported (RoPE magnitude scaling)")
        }
        switch type {
        case "none":
            return 1
        case "linear":
            let factor = try meta.optionalFloat("rope.scaling.factor") ?? meta.optionalFloat("rope.scale_linear") ?? 0
            guard factor >= 0 else { throw meta.fail("metadata key \(meta.architecture).rope.scaling.factor is \(factor)") }
            return factor == 0 ? 1 : 1 / factor
        case "yarn", "longrope":
            throw meta.fail("metadata key \(typeKey) = '\(type)' is not supported (supported: none, linear; Llama 3.1 scaling comes as rope_freqs.weight)")
        default:
            throw meta.fail("metadata key \(typeKey) = '\(type)' is not a RoPE scaling type llama.cpp knows (none, linear, yarn, longrope)")
        }
    }

    /// `rope_freqs.weight`: one positive divisor per rotated pair (ggml_rope_ext's freq_factors).
    static func ropeFrequencyFactors(_ config: ModelConfig, traits: ArchitectureTraits, tensors t: TensorLoader) throws -> [Float]? {
        let name = "rope_freqs.weight"
        guard traits.ropeFrequencyFactors, t.has(name) else { return nil }
        let factors = try t.vector(name, count: config.ropeDimensions / 2, context: "RoPE frequency factors")
        if let bad = factors.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw HARPError.invalidModel(path: t.file.path, reason: "tensor \(name): factor \(bad) is \(factors[bad]), not a positive number")
        }
        return factors
    }

    static func readWeights(_ config: ModelConfig, traits: ArchitectureTraits, tensors t: TensorLoader) throws -> ModelWeights {
        let d = config.embeddingLength
        let embedding = try t.matrix("token_embd.weight", rows: config.vocabularySize, cols: d, context: "token embedding")
        let output = config.tiedOutput ? embedding
            : try t.matrix("output.weight", rows: config.vocabularySize, cols: d, context: "output")
        let outputNorm = try t.vector("output_norm.weight", count: d, context: "output norm")

        var layers: [LayerWeights] = []
        for (l, spec) in config.layers.enumerated() {
            let p = "blk.\(l)."
            let ctx = "layer \(l)"
            var w = LayerWeights()
            switch spec.attention {
            case .full(let heads, let kvHeads, let headDim):
                let qWidth = heads * headDim, kvWidth = kvHeads * headDim
                w.attentionNorm = try t.vector(p + "attn_norm.weight", count: d, context: ctx)
                w.query = try t.matrix(p + "attn_q.weight", rows: qWidth, cols: d, context: ctx)
                w.key = try t.matrix(p + "attn_k.weight", rows: kvWidth, cols: d, context: ctx)
                w.value = try t.matrix(p + "attn_v.weight", rows: kvWidth, cols: d, context: ctx)
                w.output = try t.matrix(p + "attn_output.weight", rows: d, cols: qWidth, context: ctx)
                if spec.attentionBiases {
                    w.queryBias = try t.vector(p + "attn_q.bias", count: qWidth, context: ctx)
                    w.keyBias = try t.vector(p + "attn_k.bias", count: kvWidth, context: ctx)
                    w.valueBias = try t.vector(p + "attn_v.bias", count: kvWidth, context: ctx)
                } else {
                    w.queryBias = try t.optionalVector(p + "attn_q.bias", count: qWidth, context: ctx)
                    w.keyBias = try t.optionalVector(p + "attn_k.bias", count: kvWidth, context: ctx)
                    w.valueBias = try t.optionalVector(p + "attn_v.bias", count: kvWidth, context: ctx)
                }
                if config.queryKeyNorms {
                    w.queryNorm = try t.vector(p + "attn_q_norm.weight", count: headDim, context: ctx)
                    w.keyNorm = try t.vector(p + "attn_k_norm.weight", count: headDim, context: ctx)
                }
            case .valueOnly(let kvHeads, let headDim):
                let kvWidth = kvHeads * headDim
                w.attentionNorm = try t.vector(p + "attn_norm.weight", count: d, context: ctx)
                w.value = try t.matrix(p + "attn_v.weight", rows: kvWidth, cols: d, context: ctx)
                w.output = try t.matrix(p + "attn_output.weight", rows: d, cols: kvWidth, context: ctx)
                w.valueBias = try t.optionalVector(p + "attn_v.bias", count: kvWidth, context: ctx)
            case .linear:
                w.attentionNorm = try t.vector(p + "attn_norm.weight", count: d, context: ctx)
                w.output = try t.matrix(p + "attn_output.weight", rows: d, cols: d, context: ctx)
            case .none:
                break
            }
            w.outputBias = try t.optionalVector(p + "attn_output.bias", count: d, context: ctx)
            if config.sandwichNorms && spec.attention != .none {
                w.postAttentionNorm = try t.vector(p + "post_attention_norm.weight", count: d, context: ctx)
            }
            if spec.ffnWidth > 0 {
                let f = spec.ffnWidth
                w.ffnNorm = try t.vector(p + "ffn_norm.weight", count: d, context: ctx)
                w.gate = try t.matrix(p + "ffn_gate.weight", rows: f, cols: d, context: ctx)
                w.up = try t.matrix(p + "ffn_up.weight", rows: f, cols: d, context: ctx)
                w.down = try t.matrix(p + "ffn_down.weight", rows: d, cols: f, context: ctx)
                w.downBias = try t.optionalVector(p + "ffn_down.bias", count: d, context: ctx)
                if config.sandwichNorms {
                    w.postFFNNorm = try t.vector(p + "post_ffw_norm.weight", count: d, context: ctx)
                }
            }
            layers.append(w)
        }
        return ModelWeights(tokenEmbedding: embedding, outputNorm: outputNorm, output: output, layers: layers,
                            ropeFrequencyFactors: try ropeFrequencyFactors(config, traits: traits, tensors: t), storage: t.storage)
    }
}
