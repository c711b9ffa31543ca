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
    /// Without `harp.attention.kind`, `head_count = 0` marks an attention-free layer and
    /// `head_count_kv = 0` a linear one (llama.cpp's deci convention); elsewhere they are errors.
    var zeroHeadCountsMarkPrunedLayers = false
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
        typealias Bound = ModelMetadata.Bound
        let layerCount = try meta.int("block_count", in: 1...Bound.layers)
        let d = try meta.int("embedding_length", in: 1...Bound.width)
        let heads = try meta.perLayerInts("attention.head_count", layers: layerCount, in: 0...Bound.heads)
        let kvHeads = try meta.perLayerInts("attention.head_count_kv", layers: layerCount, in: 0...Bound.heads, default: -1)
            .enumerated().map { $1 < 0 ? heads[$0] : $1 }
        let ffn = try meta.perLayerInts("feed_forward_length", layers: layerCount, in: 0...Bound.width)
        let kinds = try meta.harpStrings("harp.attention.kind", layers: layerCount)

        // Head dimension: explicit key when present; otherwise llama.cpp's rule d / heads (of a layer with heads).
        let headDim: Int
        if let explicit = try meta.optionalInt("attention.key_length", in: 1...Bound.headDimension) {
            headDim = explicit
        } else if let h = heads.first(where: { $0 > 0 }), d % h == 0 {
            headDim = d / h
        } else {
            throw meta.fail("missing metadata key \(meta.architecture).attention.key_length")
        }
        guard headDim > 0 else { throw meta.fail("\(meta.architecture).attention.key_length is \(headDim)") }
        if let valueLength = try meta.optionalInt("attention.value_length", in: 1...Bound.headDimension), valueLength != headDim {
            throw meta.fail("\(meta.architecture).attention.value_length \(valueLength) differs from key_length \(headDim), which is not supported")
        }

        let ropeBase = try meta.positiveFloat("rope.freq_base", default: 10_000)
        var layers: [LayerSpec] = []
        for l in 0..<layerCount {
            let attention: AttentionKind
            switch kinds?[l] {
            case nil:
                // llama.cpp convention (deci): no heads → no attention; heads but no KV heads → linear.
                if heads[l] == 0 || kvHeads[l] == 0, !traits.zeroHeadCountsMarkPrunedLayers {
                    throw meta.fail("layer \(l): \(meta.key(heads[l] == 0 ? "attention.head_count" : "attention.head_count_kv")) is 0, which only the deci layout or harp.attention.kind can mean")
                }
                if heads[l] == 0 { attention = .none }
                else if kvHeads[l] == 0 { attention = .linear }
                else { attention = .full(heads: heads[l], kvHeads: kvHeads[l], headDim: headDim) }
            case "full": attention = .full(heads: heads[l], kvHeads: kvHeads[l], headDim: headDim)
            case "value-only": attention = .valueOnly(kvHeads: kvHeads[l], headDim: headDim)
            case "linear": attention = .linear
            case "none": attention = .none
            case let other?:
                throw meta.fail("layer \(l): harp.attention.kind \(UntrustedText.quoted(other)) is not one of full, value-only, linear, none")
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
        if let v = try meta.optionalInt("vocab_size", in: 1...Bound.vocabulary) { vocab = v }
        else if let tokens = meta.file.metadata["tokenizer.ggml.tokens"]?.arrayCount { vocab = tokens }
        else if let embd = meta.file.tensor(named: "token_embd.weight"), embd.shape.count >= 2 { vocab = embd.shape[1] }
        else { throw meta.fail("cannot determine the vocabulary size (no \(meta.architecture).vocab_size)") }

        var config = ModelConfig(
            architecture: meta.architecture,
            embeddingLength: d,
            vocabularySize: vocab,
            contextLength: try meta.optionalInt("context_length", in: 1...Bound.context) ?? 2048,
            layers: layers,
            normEpsilon: try meta.positiveFloat("attention.layer_norm_rms_epsilon", default: traits.defaultNormEpsilon),
            ropeDimensions: try meta.optionalInt("rope.dimension_count", in: 1...Bound.headDimension) ?? headDim,
            ropeFreqScale: 1 / (try meta.positiveFloat("rope.scale_linear", default: 1)),
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
        return ModelWeights(tokenEmbedding: embedding, outputNorm: outputNorm, output: output,
                            layers: layers, storage: t.storage)
    }
}
