/// Reads the common decoder-only structure (llama.cpp's key names) of any architecture in
/// `ArchitectureSchema.all`, and its tensors as the architecture's schema lays them out.
enum DecoderLoader {
    static func load(metadata meta: ModelMetadata, schema: ArchitectureSchema,
                     tensors: TensorLoader) throws -> (ModelConfig, ModelWeights) {
        let config = try readConfig(meta, schema: schema)
        let weights = try readWeights(config, schema: schema, tensors: tensors)
        return (config, weights)
    }

    static func readConfig(_ meta: ModelMetadata, schema traits: ArchitectureSchema) throws -> ModelConfig {
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
            layers.append(LayerSpec(attention: attention, ffnWidth: ffn[l], ropeBase: ropeBase))
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
            ropeFreqScale: try ropeFrequencyScale(meta),
            ropeLayout: traits.ropeLayout,
            activation: traits.activation,
            tiedOutput: meta.file.tensor(named: "output.weight") == nil,
            embeddingScale: traits.scalesEmbedding ? Float(d).squareRoot() : 1,
            sandwichNorms: traits.sandwichNorms,
            queryKeyNorms: traits.hasQueryKeyNorms)
        guard config.ropeDimensions > 0, config.ropeDimensions <= headDim, config.ropeDimensions % 2 == 0 else {
            throw meta.fail("\(meta.architecture).rope.dimension_count \(config.ropeDimensions) does not fit head dimension \(headDim)")
        }
        try traits.readKeys?(&config, meta)
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
            let factor = try meta.optionalPositiveFloat("rope.scaling.factor") ?? meta.optionalPositiveFloat("rope.scale_linear") ?? 1
            return 1 / factor
        case "yarn", "longrope":
            throw meta.fail("metadata key \(typeKey) = '\(type)' is not supported (supported: none, linear; Llama 3.1 scaling comes as rope_freqs.weight)")
        default:
            throw meta.fail("metadata key \(typeKey) = '\(type)' is not a RoPE scaling type llama.cpp knows (none, linear, yarn, longrope)")
        }
    }

    /// Loads every slot of the schema and checks that no tensor of the file is left over.
    static func readWeights(_ config: ModelConfig, schema: ArchitectureSchema, tensors t: TensorLoader) throws -> ModelWeights {
        let path = t.file.path
        func fail(_ reason: String) -> HARPError { .invalidModel(path: path, reason: reason) }
        let slots = schema.tensorSlots(config)
        var embedding: WeightMatrix?, output: WeightMatrix?, outputNorm: [Float]?, factors: [Float]?
        var layerTensors = [[LayerTensor: TensorValue]](repeating: [:], count: config.layerCount)
        for slot in slots {
            if slot.presence == .optional, !t.has(slot.name) { continue }
            let context: String
            if case .layer(let l, _) = slot.role { context = "layer \(l)" } else { context = slot.name }
            let value: TensorValue = slot.isMatrix
                ? .matrix(try t.matrix(slot.name, rows: slot.shape[1], cols: slot.shape[0], context: context))
                : .vector(try t.vector(slot.name, count: slot.shape[0], context: context))
            switch (slot.role, value) {
            case (.tokenEmbedding, .matrix(let m)): embedding = m
            case (.output, .matrix(let m)): output = m
            case (.outputNorm, .vector(let v)): outputNorm = v
            case (.ropeFrequencies, .vector(let v)): factors = v
            case (.layer(let l, let role), _): layerTensors[l][role] = value
            default: throw fail("internal: tensor \(slot.name) loaded as the wrong kind")
            }
        }
        // After the slots, so a missing or misshapen tensor is reported as such first.
        let claimed = Set(slots.map(\.name))
        if let stray = t.file.tensors.first(where: { !claimed.contains($0.name) }) {
            throw fail("tensor \(stray.name) has no role in the \(schema.name) layout\(strayContext(stray.name, config))")
        }
        guard let embedding, let outputNorm else { throw fail("missing tensor token_embd.weight or output_norm.weight") }
        if let factors, let bad = factors.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw fail("tensor rope_freqs.weight: factor \(bad) is \(factors[bad]), not a positive number")
        }
        var layers: [LayerWeights] = []
        for (l, spec) in config.layers.enumerated() {
            do {
                layers.append(try LayerWeights(kind: spec.attention, hasMLP: spec.ffnWidth > 0, tensors: layerTensors[l],
                                               describe: { $0.name(layer: l) }))
            } catch HARPError.invalidArgument(let reason) {
                throw fail("layer \(l): \(reason)")
            }
        }
        return ModelWeights(tokenEmbedding: embedding, outputNorm: outputNorm, output: output ?? embedding, layers: layers,
                            ropeFrequencyFactors: factors, storage: t.storage)
    }

    /// Why a layer tensor has no slot: the layer's kind as the metadata gives it.
    private static func strayContext(_ name: String, _ config: ModelConfig) -> String {
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let l = Int(parts[1]) else { return "" }
        guard config.layers.indices.contains(l) else { return " (the model has \(config.layerCount) layers)" }
        let spec = config.layers[l]
        return " (layer \(l): \(spec.attention.name) attention, feed_forward_length \(spec.ffnWidth))"
    }
}
