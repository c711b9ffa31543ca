extension ArchitectureSchema {
    /// Gemma 3: √d-scaled embeddings, GeGLU, RMSNorm before and after attention and MLP, per-head
    /// query/key RMSNorm, NeoX RoPE, and sliding-window ("local") layers with their own RoPE base
    /// (5 local : 1 global by default). GGUF norm weights already include Gemma's `1 +`.
    static let gemma3 = ArchitectureSchema(
        name: "gemma3", ropeLayout: .neox, activation: .gelu, scalesEmbedding: true, defaultNormEpsilon: 1e-6,
        attentionBiases: .absent, queryKeyNorms: .required, sandwichNorms: true,
        readKeys: { config, meta in try GemmaLayout.read(into: &config, meta, defaults: .gemma3) },
        writeKeys: { config in try GemmaLayout.keys(config, defaults: .gemma3) })
}

extension GemmaLayout.Defaults {
    /// llama.cpp's `llama_model_gemma3::load_arch_hparams`.
    static let gemma3 = Self(slidingWindow: nil, pattern: 6, localRopeBase: 10_000, attentionSoftcap: nil,
                             finalLogitSoftcap: nil, largeModelLayerCount: 62)
}

/// The settings Gemma 2 and 3 read beyond the common ones, with the defaults llama.cpp hard-codes
/// for each family (`llama_model_gemma2/3::load_arch_hparams`).
enum GemmaLayout {
    struct Defaults {
        /// Window of the local layers when the file has no `attention.sliding_window`; nil: no local layers.
        var slidingWindow: Int?
        /// Every `pattern`-th layer (the last of each group) is global, the others local.
        var pattern: Int
        /// RoPE base of the local layers; nil: the global base.
        var localRopeBase: Float?
        var attentionSoftcap: Float?
        var finalLogitSoftcap: Float?
        /// Layer count of the family's 27B model, whose queries are scaled by 1/√(d / heads)
        /// instead of 1/√headDim (gemma_pytorch's `query_pre_attn_scalar`).
        var largeModelLayerCount: Int
    }

    static func read(into config: inout ModelConfig, _ meta: ModelMetadata, defaults: Defaults) throws {
        guard config.ropeFreqScale == 1, meta["rope.scaling.factor"] == nil else {
            // llama.cpp scales only the global layers' frequencies; LayerSpec has one RoPE scale for all.
            throw meta.fail("\(meta.architecture): RoPE frequency scaling (rope.scale_linear / rope.scaling.factor) is not supported")
        }
        if let cap = try meta.optionalFloat("attn_logit_softcapping") ?? defaults.attentionSoftcap, cap > 0 {
            config.attentionSoftcap = cap
        }
        if let cap = try meta.optionalFloat("final_logit_softcapping") ?? defaults.finalLogitSoftcap, cap > 0 {
            config.finalLogitSoftcap = cap
        }
        if let scalar = try meta.optionalFloat("attention.query_pre_attn_scalar") {
            // Not a llama.cpp key (it uses the layer-count rule below, which agrees with every
            // published size); files that state the scalar get exactly it.
            guard scalar > 0 else { throw meta.fail("metadata key \(meta.architecture).attention.query_pre_attn_scalar is \(scalar)") }
            config.attentionScale = 1 / scalar.squareRoot()
        } else if let scale = largeModelScale(config, defaults: defaults) {
            config.attentionScale = scale
        }

        guard let window = try meta.optionalInt("attention.sliding_window", in: 0...ModelMetadata.Bound.context) ?? defaults.slidingWindow,
              window > 0 else { return }
        let local = try localLayers(meta, layers: config.layerCount, defaultPattern: defaults.pattern)
        let globalBase = config.layers.first?.ropeBase ?? 10_000
        let localBase = try meta.optionalPositiveFloat("rope.freq_base_swa") ?? defaults.localRopeBase ?? globalBase
        for l in config.layers.indices where local[l] {
            config.layers[l].slidingWindow = window
            config.layers[l].ropeBase = localBase
        }
    }

    /// llama.cpp's rule for the family's largest model: queries scaled by 1/√(d / heads).
    private static func largeModelScale(_ config: ModelConfig, defaults: Defaults) -> Float? {
        guard config.layerCount == defaults.largeModelLayerCount, let heads = config.layers.lazy.compactMap(\.queryHeads).first else { return nil }
        return 1 / Float(config.embeddingLength / heads).squareRoot()
    }

    /// `attention.sliding_window_pattern`: a per-layer boolean array, or a period n in which
    /// layers l with l % n < n − 1 are local (n = 0: all local).
    private static func localLayers(_ meta: ModelMetadata, layers: Int, defaultPattern: Int) throws -> [Bool] {
        let key = "\(meta.architecture).attention.sliding_window_pattern"
        if let values = meta["attention.sliding_window_pattern"]?.arrayValue {
            let flags = values.compactMap(\.boolValue)
            guard flags.count == values.count, flags.count == layers else {
                throw meta.fail("metadata key \(key) must hold one boolean per layer (\(layers))")
            }
            return flags
        }
        let pattern = try meta.optionalInt("attention.sliding_window_pattern") ?? defaultPattern
        guard pattern >= 0 else { throw meta.fail("metadata key \(key) is \(pattern)") }
        return (0..<layers).map { pattern == 0 || $0 % pattern < pattern - 1 }
    }

    /// The inverse of `read`: keys that give `config`'s soft-caps, attention scale, windows and
    /// local RoPE base back, explicit rather than left to the defaults.
    static func keys(_ config: ModelConfig, defaults: Defaults) throws -> [(String, GGUFValue)] {
        var keys: [(String, GGUFValue)] = [
            ("attn_logit_softcapping", .float32(config.attentionSoftcap ?? 0)),
            ("final_logit_softcapping", .float32(config.finalLogitSoftcap ?? 0)),
        ]
        if let scale = config.attentionScale, scale != largeModelScale(config, defaults: defaults) {
            // Whole scalars (every published one is) are written exactly, so reading gives the same scale.
            let scalar = 1 / (scale * scale)
            keys.append(("attention.query_pre_attn_scalar", .float32(abs(scalar - scalar.rounded()) < 1e-3 ? scalar.rounded() : scalar)))
        }
        let windows = Set(config.layers.compactMap(\.slidingWindow))
        guard windows.count <= 1 else {
            throw HARPError.invalidArgument("\(config.architecture): local layers with different windows (\(windows.sorted())) cannot be written")
        }
        let local = config.layers.map { $0.slidingWindow != nil }
        keys.append(("attention.sliding_window_pattern", .array(local.map { .bool($0) })))
        if let window = windows.first {
            keys.append(("attention.sliding_window", .uint32(UInt32(window))))
            let localBases = Set(config.layers.filter { $0.slidingWindow != nil }.map(\.ropeBase))
            guard localBases.count == 1, let base = localBases.first else {
                throw HARPError.invalidArgument("\(config.architecture): local layers with different RoPE bases cannot be written")
            }
            keys.append(("rope.freq_base_swa", .float32(base)))
        }
        return keys
    }
}

extension LayerSpec {
    /// Query heads of a full-attention layer.
    var queryHeads: Int? {
        if case .full(let heads, _, _) = attention { return heads }
        return nil
    }
}
