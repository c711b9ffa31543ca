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
        try writeStructure(c, into: &w, layout: layout)
        for (k, v) in extraMetadata { w.set(k, v) }
        try writeTensors(model, into: &w, layout: layout, type: type)
        return w
    }

    /// Sets the keys that state `c`'s structure in `layout` — the common ones every family reads
    /// (`DecoderLoader.readConfig`) and, in the native layout, the family's own (its schema's
    /// `writeKeys`) — plus `general.architecture`.
    public static func writeStructure(_ c: ModelConfig, into w: inout GGUFWriter, layout: ModelLayout = .native) throws {
        let arch = layout == .deci ? "deci" : c.architecture
        w.set("general.architecture", .string(arch))
        let headDim = c.layers.compactMap { spec -> Int? in
            switch spec.attention {
            case .full(_, _, let hd), .valueOnly(_, let hd): return hd
            default: return nil
            }
        }.first ?? c.embeddingLength / max(1, c.layers.count)
        var heads: [Int] = [], kvHeads: [Int] = []
        let fusedHeads = c.embeddingLength / headDim
        for (l, spec) in c.layers.enumerated() {
            // llama.cpp's deci graph skips a layer with no FFN before adding its attention output
            // (`if (n_ff == 0) continue;`): such a layer must have no attention either.
            if layout == .deci, spec.ffnWidth == 0, spec.attention != .none {
                throw HARPError.invalidArgument("layer \(l): the deci layout cannot hold a layer with \(spec.attention.name) attention and no FFN (llama.cpp would skip its attention)")
            }
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
            for (suffix, value) in try ArchitectureSchema.named(arch)?.writeKeys?(c) ?? [] { w.set("\(arch).\(suffix)", value) }
        }
    }

    /// The model's tensors in the target layout, each checked against the target schema's slot
    /// (name, shape, presence): a tensor the layout has no slot for, or a required slot left
    /// empty, is refused rather than dropped.
    private static func writeTensors(_ model: Model, into w: inout GGUFWriter, layout: ModelLayout, type: GGMLType?) throws {
        let c = model.config, weights = model.weights
        let arch = layout == .deci ? "deci" : c.architecture
        guard let schema = ArchitectureSchema.named(arch) else {
            throw HARPError.invalidArgument("architecture '\(arch)' has no GGUF layout to write")
        }
        // The structure as the target layout states it: deci stores value-only layers fused (linear).
        var target = c
        if layout == .deci {
            for l in target.layers.indices where { if case .valueOnly = target.layers[l].attention { return true }; return false }() {
                target.layers[l].attention = .linear
            }
        }
        let builder = WeightBuilder()
        let fullPrecision: Set<GGMLType> = [.f32, .f16, .bf16]
        var values: [TensorSlot.Role: TensorValue] = [:]
        values[.tokenEmbedding] = .matrix(weights.tokenEmbedding)
        values[.outputNorm] = .vector(weights.outputNorm)
        if !c.tiedOutput { values[.output] = .matrix(weights.output) }
        if let f = weights.ropeFrequencyFactors { values[.ropeFrequencies] = .vector(f) }
        var order: [TensorSlot.Role] = [.tokenEmbedding, .outputNorm, .output, .ropeFrequencies]
        var converted: Set<TensorSlot.Role> = []  // already in their final type
        for l in c.layers.indices {
            var layer = weights.layers[l]
            if layout == .deci, case .valueOnly(let frame, let v, let valueBias, let o) = layer.attention {
                guard valueBias == nil else {
                    throw HARPError.invalidArgument("layer \(l): a value bias cannot be fused into the deci layout")
                }
                let fused = try fuse(output: o, value: v, builder: builder, type: type ?? fusedType(source: o.type, cols: v.cols))
                layer.attention = .linear(frame, output: fused)
                converted.insert(.layer(l, .output))
            }
            for (role, value) in layer.tensors { values[.layer(l, role)] = value }
            order += layer.tensors.map { .layer(l, $0.0) }
        }
        var written: Set<TensorSlot.Role> = []
        for slot in schema.tensorSlots(target) {
            guard let value = values[slot.role] else {
                guard slot.presence != .required else {
                    throw HARPError.invalidArgument("the \(arch) layout needs tensor \(slot.name), which the model does not have")
                }
                continue
            }
            written.insert(slot.role)
            switch value {
            case .matrix(var m):
                guard [m.cols, m.rows] == slot.shape else {
                    throw HARPError.invalidArgument("tensor \(slot.name) is \(m.rows) × \(m.cols), the \(arch) layout expects \(slot.shape[1]) × \(slot.shape[0])")
                }
                let keepType = converted.contains(slot.role) || (slot.role == .tokenEmbedding && !(type.map(fullPrecision.contains) ?? false))
                if let type, !keepType { m = try builder.converted(m, to: type) }
                try w.addTensor(name: slot.name, shape: slot.shape, type: m.type,
                                data: Array(UnsafeRawBufferPointer(start: m.data, count: m.byteCount)))
            case .vector(let v):
                guard [v.count] == slot.shape else {
                    throw HARPError.invalidArgument("tensor \(slot.name) has \(v.count) values, the \(arch) layout expects \(slot.shape[0])")
                }
                try w.addTensor(name: slot.name, shape: slot.shape, type: .f32, floats: v)
            }
        }
        if let role = order.first(where: { values[$0] != nil && !written.contains($0) }) {
            let what: String
            switch role {
            case .layer(let l, let t): what = "layer \(l): tensor \(t.name(layer: l)) (\(c.layers[l].attention.name) attention)"
            default: what = "tensor \(role)"
            }
            throw HARPError.invalidArgument("\(what) has no place in the \(arch) layout")
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
