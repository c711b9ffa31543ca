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
        layers[layer].attention = .none(constant: nil)
    }

    /// Removes the MLP block of `layer`.
    mutating func removeMLP(_ layer: Int) {
        specs[layer].ffnWidth = 0
        layers[layer].mlp = .none
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
        guard case .gated(var mlp) = layers[layer].mlp else {
            throw HARPError.invalidArgument("layer \(layer) has no MLP to prune")
        }
        mlp.gate = selectingRows(mlp.gate, kept)
        mlp.up = selectingRows(mlp.up, kept)
        mlp.down = try selectingColumns(mlp.down, kept)
        mlp.downBias = Self.adding(compensation, to: mlp.downBias)
        layers[layer].mlp = .gated(mlp)
        specs[layer].ffnWidth = kept.count
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
            let frame = layers[layer].attention.frame
            let constant = compensation.map { Self.adding($0, to: frame?.outputBias) } ?? frame?.outputBias
            let normed = frame?.postNorm != nil
            removeAttention(layer)
            if !normed { layers[layer].attention = .none(constant: constant) }
            return
        }
        let groupSize = heads / kvHeads
        let kvRows = kept.flatMap { g in (g * headDim)..<((g + 1) * headDim) }
        let queryRows = kept.flatMap { g in (g * groupSize * headDim)..<((g + 1) * groupSize * headDim) }
        guard case .full(var frame, var p) = layers[layer].attention else {
            throw HARPError.invalidArgument("layer \(layer): full attention without Q, K, V and O")
        }
        p.query = selectingRows(p.query, queryRows)
        p.key = selectingRows(p.key, kvRows)
        p.value = selectingRows(p.value, kvRows)
        p.output = try selectingColumns(p.output, queryRows)
        p.biases = p.biases.map { b in
            QKVBiases(query: queryRows.map { b.query[$0] }, key: kvRows.map { b.key[$0] }, value: kvRows.map { b.value[$0] })
        }
        if let compensation { frame.outputBias = Self.adding(compensation, to: frame.outputBias) }
        layers[layer].attention = .full(frame, p)
        specs[layer].attention = .full(heads: kept.count * groupSize, kvHeads: kept.count, headDim: headDim)
    }
}
