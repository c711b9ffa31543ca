import HARP

/// Builds a structurally changed copy of a model in memory: untouched matrices keep pointing into
/// the source model's storage, new ones are encoded by a `WeightBuilder`. The result is an
/// ordinary `Model` that the runtime runs and `ModelWriter` writes.
struct ModelEditor {
    let source: Model
    var specs: [LayerSpec]
    var layers: [LayerWeights]
    /// Type of re-encoded matrices (nil: each keeps its source type where its shape allows).
    let storageType: GGMLType?
    private let builder: WeightBuilder

    init(_ source: Model, storageType: GGMLType?) {
        self.source = source
        specs = source.config.layers
        layers = source.weights.layers
        self.storageType = storageType
        builder = WeightBuilder(keeping: [source])
    }

    func build() -> Model {
        var config = source.config
        config.layers = specs
        let w = source.weights
        let weights = builder.weights(tokenEmbedding: w.tokenEmbedding, outputNorm: w.outputNorm, output: w.output, layers: layers,
                                      ropeFrequencyFactors: w.ropeFrequencyFactors)
        return Model(file: source.file, config: config, weights: weights, weightFormat: source.weightFormat)
    }

    /// The type a new matrix with rows of `cols` values derived from `original` is stored as.
    func type(for original: GGMLType, cols: Int) -> GGMLType {
        if let storageType { return storageType }
        if original.isQuantizable && cols % original.blockSize == 0 { return original }
        return cols % GGMLType.q8_0.blockSize == 0 ? .q8_0 : .f32
    }

    /// A new matrix of floats derived from `original` (its name and storage type).
    func matrix(like original: WeightMatrix, rows: Int, cols: Int, floats: [Float]) throws -> WeightMatrix {
        try builder.matrix(original.name, rows: rows, cols: cols, floats: floats, type: type(for: original.type, cols: cols))
    }

    /// The given rows of `m`, copied as stored (no re-quantization).
    func selectingRows(_ m: WeightMatrix, _ rows: [Int]) -> WeightMatrix {
        let rowBytes = m.rowBytes
        var bytes: [UInt8] = []
        bytes.reserveCapacity(rows.count * rowBytes)
        for r in rows {
            bytes.append(contentsOf: UnsafeRawBufferPointer(start: m.data + r * rowBytes, count: rowBytes))
        }
        return builder.matrix(m.name, rows: rows.count, cols: m.cols, bytes: bytes, type: m.type)
    }

    /// The given columns of `m` (decoded, selected, re-encoded).
    func selectingColumns(_ m: WeightMatrix, _ columns: [Int]) throws -> WeightMatrix {
        let floats = m.floats()
        var out: [Float] = []
        out.reserveCapacity(m.rows * columns.count)
        for r in 0..<m.rows {
            let row = r * m.cols
            for c in columns { out.append(floats[row + c]) }
        }
        return try matrix(like: m, rows: m.rows, cols: columns.count, floats: out)
    }

    // MARK: - Layer edits

    /// Removes the attention block of `layer` (HARP's α = 0, and layer removal).
    mutating func removeAttention(_ layer: Int) {
        specs[layer].attention = .none
        var w = layers[layer]
        w.attentionNorm = nil
        w.query = nil; w.key = nil; w.value = nil; w.output = nil; w.outputBias = nil
        w.queryBias = nil; w.keyBias = nil; w.valueBias = nil
        w.queryNorm = nil; w.keyNorm = nil; w.postAttentionNorm = nil
        layers[layer] = w
    }

    /// Removes the MLP block of `layer`.
    mutating func removeMLP(_ layer: Int) {
        specs[layer].ffnWidth = 0
        specs[layer].ffnDownBias = false
        var w = layers[layer]
        w.ffnNorm = nil; w.gate = nil; w.up = nil; w.down = nil; w.downBias = nil; w.postFFNNorm = nil
        layers[layer] = w
    }

    /// `bias + compensation`, a missing bias counting as zeros.
    static func adding(_ compensation: [Float], to bias: [Float]?) -> [Float] {
        guard let bias else { return compensation }
        return zip(bias, compensation).map { $0 + $1 }
    }

    /// Keeps the MLP hidden channels `kept` of `layer` (ascending) and adds `compensation` to the
    /// down-projection bias.
    mutating func keepMLPChannels(_ layer: Int, _ kept: [Int], compensation: [Float]) throws {
        guard !kept.isEmpty else { return removeMLP(layer) }
        var w = layers[layer]
        guard let gate = w.gate, let up = w.up, let down = w.down else {
            throw HARPError.invalidArgument("layer \(layer) has no MLP to prune")
        }
        w.gate = selectingRows(gate, kept)
        w.up = selectingRows(up, kept)
        w.down = try selectingColumns(down, kept)
        w.downBias = Self.adding(compensation, to: w.downBias)
        layers[layer] = w
        specs[layer].ffnWidth = kept.count
        specs[layer].ffnDownBias = true
    }

    /// Keeps the KV groups `kept` (ascending) of a full-attention layer: each group's KV head, its
    /// query heads and their columns of W_O; `compensation` is added to the output-projection bias.
    /// No group left removes the attention block.
    mutating func keepKVGroups(_ layer: Int, _ kept: [Int], compensation: [Float]? = nil) throws {
        guard case .full(let heads, let kvHeads, let headDim) = specs[layer].attention else {
            throw HARPError.invalidArgument("layer \(layer) has no full attention to prune heads from")
        }
        guard kept.count < kvHeads else { return }
        guard !kept.isEmpty else {
            // No head left: the block's output is the constant b_O + compensation, either of which
            // may be absent (none before a post-attention norm, which would rescale it per token).
            let constant = compensation.map { Self.adding($0, to: layers[layer].outputBias) } ?? layers[layer].outputBias
            let normed = layers[layer].postAttentionNorm != nil
            removeAttention(layer)
            if !normed { layers[layer].outputBias = constant }
            return
        }
        let groupSize = heads / kvHeads
        let kvRows = kept.flatMap { g in (g * headDim)..<((g + 1) * headDim) }
        let queryRows = kept.flatMap { g in (g * groupSize * headDim)..<((g + 1) * groupSize * headDim) }
        var w = layers[layer]
        guard let q = w.query, let k = w.key, let v = w.value, let o = w.output else {
            throw HARPError.invalidArgument("layer \(layer): full attention without Q, K, V and O")
        }
        w.query = selectingRows(q, queryRows)
        w.key = selectingRows(k, kvRows)
        w.value = selectingRows(v, kvRows)
        w.output = try selectingColumns(o, queryRows)
        w.queryBias = w.queryBias.map { b in queryRows.map { b[$0] } }
        w.keyBias = w.keyBias.map { b in kvRows.map { b[$0] } }
        w.valueBias = w.valueBias.map { b in kvRows.map { b[$0] } }
        if let compensation { w.outputBias = Self.adding(compensation, to: w.outputBias) }
        layers[layer] = w
        specs[layer].attention = .full(heads: kept.count * groupSize, kvHeads: kept.count, headDim: headDim)
    }
}
