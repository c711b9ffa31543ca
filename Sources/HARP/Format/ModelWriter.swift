/// The GGUF layouts a model can be written in.
public enum ModelLayout: String, Sendable, CaseIterable {
    /// The model's own architecture with per-layer arrays and `harp.*` keys (value-only layers
    /// keep the factored `W_V`, `W_O′`).
    case native
    /// llama.cpp's `deci`: value-only layers fused into one d × d `attn_output`
    /// (`head_count_kv = 0`), attention-free layers `head_count = 0`. Loadable by other runtimes.
    case deci
}

/// Writes an in-memory `Model` (loaded or pruned) as a GGUF file, atomically.
public enum ModelWriter {
    /// - Parameters:
    ///   - type: store every matrix but the token embedding as this type (nil: keep each as it is);
    ///     norms and biases are always F32.
    ///   - extraMetadata: added or replaced keys (the pruner's `harp.alpha`, `harp.provenance`, ...).
    ///   - protecting: a path that must not be overwritten (the pruner's input).
    public static func write(_ model: Model, to path: String, layout: ModelLayout = .native, type: GGMLType? = nil,
                             extraMetadata: [(String, GGUFValue)] = [], protecting: String? = nil) throws {
        let writer = try makeWriter(model, layout: layout, type: type, extraMetadata: extraMetadata)
        try writer.write(to: path, protecting: protecting ?? model.path)
    }

    public static func makeWriter(_ model: Model, layout: ModelLayout, type: GGMLType?,
                                  extraMetadata: [(String, GGUFValue)] = []) throws -> GGUFWriter {
        let c = model.config
        if layout == .deci && c.architecture != "llama" && c.architecture != "deci" {
            throw HARPError.invalidArgument("the deci layout holds Llama-family models only, not \(c.architecture)")
        }
        let arch = layout == .deci ? "deci" : c.architecture
        var w = GGUFWriter()
        // Tokenizer, general and (native layout) family keys — sliding windows, soft-caps, RoPE
        // variants — come from the source; the structural keys are rewritten below. The deci layout
        // is another architecture, so none of the source's architecture keys carry over.
        w.copyMetadata(from: model.file) { key in
            (layout == .deci && key.hasPrefix("\(c.architecture).")) || key.hasPrefix("harp.")
                || key == "general.architecture" || key == "general.file_type"
        }
        w.set("general.architecture", .string(arch))
        try writeStructure(c, into: &w, arch: arch, layout: layout)
        for (k, v) in extraMetadata { w.set(k, v) }
        try writeTensors(model, into: &w, layout: layout, type: type)
        return w
    }

    private static func writeStructure(_ c: ModelConfig, into w: inout GGUFWriter, arch: String, layout: ModelLayout) throws {
        let headDim = c.layers.compactMap { spec -> Int? in
            switch spec.attention {
            case .full(_, _, let hd), .valueOnly(_, let hd): return hd
            default: return nil
            }
        }.first ?? c.embeddingLength / max(1, c.layers.count)
        var heads: [Int] = [], kvHeads: [Int] = []
        let fusedHeads = c.embeddingLength / headDim
        for (l, spec) in c.layers.enumerated() {
            switch (spec.attention, layout) {
            case (.full(let h, let kv, _), _): heads.append(h); kvHeads.append(kv)
            case (.valueOnly(let kv, _), .native): heads.append(kv); kvHeads.append(kv)
            case (.valueOnly, .deci), (.linear, _):
                // deci reads a linear layer's attn_output as [head_count × head_dim, d]: it must equal d.
                guard fusedHeads * headDim == c.embeddingLength else {
                    throw HARPError.invalidArgument("layer \(l): d = \(c.embeddingLength) is not a multiple of the head dimension \(headDim)")
                }
                heads.append(fusedHeads); kvHeads.append(0)
            case (.none, _): heads.append(0); kvHeads.append(0)
            }
        }
        func ints(_ values: [Int]) -> GGUFValue { .array(values.map { .int32(Int32($0)) }) }
        w.set("\(arch).block_count", .uint32(UInt32(c.layerCount)))
        w.set("\(arch).context_length", .uint32(UInt32(c.contextLength)))
        w.set("\(arch).embedding_length", .uint32(UInt32(c.embeddingLength)))
        w.set("\(arch).feed_forward_length", ints(c.layers.map(\.ffnWidth)))
        w.set("\(arch).attention.head_count", ints(heads))
        w.set("\(arch).attention.head_count_kv", ints(kvHeads))
        w.set("\(arch).attention.key_length", .uint32(UInt32(headDim)))
        w.set("\(arch).attention.value_length", .uint32(UInt32(headDim)))
        w.set("\(arch).attention.layer_norm_rms_epsilon", .float32(c.normEpsilon))
        // The global base: sliding-window layers may have their own (Gemma 3's rope.freq_base_swa).
        let ropeBase = c.layers.first { $0.slidingWindow == nil }?.ropeBase ?? c.layers.first?.ropeBase ?? 10_000
        w.set("\(arch).rope.freq_base", .float32(ropeBase))
        w.set("\(arch).rope.dimension_count", .uint32(UInt32(c.ropeDimensions)))
        if c.ropeFreqScale != 1 { w.set("\(arch).rope.scale_linear", .float32(1 / c.ropeFreqScale)) }
        w.set("\(arch).vocab_size", .uint32(UInt32(c.vocabularySize)))
        if layout == .native {
            w.set("harp.attention.kind", .array(c.layers.map { .string($0.attention.name) }))
        }
    }

    private static func writeTensors(_ model: Model, into w: inout GGUFWriter, layout: ModelLayout, type: GGMLType?) throws {
        let c = model.config, weights = model.weights
        let builder = WeightBuilder()
        func add(_ name: String, _ m: WeightMatrix, convert: Bool = true) throws {
            var m = m
            if convert, let type { m = try builder.converted(m, to: type) }
            let bytes = Array(UnsafeRawBufferPointer(start: m.data, count: m.byteCount))
            try w.addTensor(name: name, shape: [m.cols, m.rows], type: m.type, data: bytes)
        }
        func add(_ name: String, _ v: [Float]?) throws {
            guard let v else { return }
            try w.addTensor(name: name, shape: [v.count], type: .f32, floats: v)
        }
        let fullPrecision: Set<GGMLType> = [.f32, .f16, .bf16]
        try add("token_embd.weight", weights.tokenEmbedding, convert: type.map(fullPrecision.contains) ?? false)
        try add("output_norm.weight", weights.outputNorm)
        if !c.tiedOutput { try add("output.weight", weights.output) }
        try add("rope_freqs.weight", weights.ropeFrequencyFactors)
        for (l, spec) in c.layers.enumerated() {
            let p = "blk.\(l).", lw = weights.layers[l]
            try add(p + "attn_norm.weight", lw.attentionNorm)
            // llama.cpp's deci graph adds attn_output.bias only after full attention.
            if layout == .deci, lw.outputBias != nil, !spec.attention.needsKVCache {
                throw HARPError.invalidArgument("layer \(l): deci's \(spec.attention.name) layers cannot keep an attention output bias (a compensated pruned block)")
            }
            if case .valueOnly = spec.attention, layout == .deci {
                guard let v = lw.value, let o = lw.output else { continue }
                guard lw.valueBias == nil else {
                    throw HARPError.invalidArgument("layer \(l): a value bias cannot be fused into the deci layout")
                }
                try add(p + "attn_output.weight", try fuse(output: o, value: v, builder: builder, type: type ?? fusedType(source: o.type, cols: v.cols)), convert: false)
            } else {
                for (suffix, m) in [("attn_q", lw.query), ("attn_k", lw.key), ("attn_v", lw.value), ("attn_output", lw.output)] {
                    if let m { try add(p + suffix + ".weight", m) }
                }
                try add(p + "attn_q.bias", lw.queryBias)
                try add(p + "attn_k.bias", lw.keyBias)
                try add(p + "attn_v.bias", lw.valueBias)
                try add(p + "attn_output.bias", lw.outputBias)
                try add(p + "attn_q_norm.weight", lw.queryNorm)
                try add(p + "attn_k_norm.weight", lw.keyNorm)
            }
            try add(p + "post_attention_norm.weight", lw.postAttentionNorm)
            try add(p + "ffn_norm.weight", lw.ffnNorm)
            for (suffix, m) in [("ffn_gate", lw.gate), ("ffn_up", lw.up), ("ffn_down", lw.down)] {
                if let m { try add(p + suffix + ".weight", m) }
            }
            try add(p + "ffn_down.bias", lw.downBias)
            try add(p + "post_ffw_norm.weight", lw.postFFNNorm)
        }
    }

    /// W = W_O′ · W_V (d × d): the value-only block as one matrix.
    static func fuse(output o: WeightMatrix, value v: WeightMatrix, builder: WeightBuilder, type: GGMLType) throws -> WeightMatrix {
        let of = o.floats(), vf = v.floats()
        let d = o.rows, k = o.cols, n = v.cols
        var fused = [Float](repeating: 0, count: d * n)
        for r in 0..<d {
            for j in 0..<k {
                let a = of[r * k + j]
                if a == 0 { continue }
                let vRow = j * n
                for c in 0..<n { fused[r * n + c] += a * vf[vRow + c] }
            }
        }
        return try builder.matrix(o.name, rows: d, cols: n, floats: fused, type: type.isQuantizable ? type : .f32)
    }

    /// Type of a fused value-only matrix when no `--type` is asked for. The factors are already
    /// rounded to `source`; rounding their product to 4–6 bits again would make the deci file
    /// measurably worse than the native one, so types below 8 bits become Q8_0.
    static func fusedType(source: GGMLType, cols: Int) -> GGMLType {
        if [.f32, .f16, .bf16, .q8_0].contains(source) { return source }
        return cols % GGMLType.q8_0.blockSize == 0 ? .q8_0 : .f32
    }
}
