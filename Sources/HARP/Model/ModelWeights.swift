/// A weight matrix of `rows` output rows by `cols` inputs in a stored type, viewed in place in
/// the mapped model file or in a buffer the weights own.
public struct WeightMatrix: @unchecked Sendable {  // points into storage kept alive by ModelWeights
    public let name: String
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer

    public var rowBytes: Int { type.byteCount(elements: cols) ?? 0 }
    public var byteCount: Int { rowBytes * rows }
    public var parameterCount: Int { rows * cols }

    /// Dequantized copy of the whole matrix (row-major, rows × cols).
    public func floats() -> [Float] {
        TensorCodec.decode(UnsafeRawBufferPointer(start: data, count: byteCount), type: type, rowLength: cols, rows: rows)
    }

    /// Dequantized copy of one row.
    public func row(_ r: Int) -> [Float] {
        TensorCodec.decode(UnsafeRawBufferPointer(start: data + r * rowBytes, count: rowBytes), type: type, rowLength: cols, rows: 1)
    }
}

/// The weights of one decoder layer; which are present follows the layer's `LayerSpec`.
public struct LayerWeights: Sendable {
    public var attentionNorm: [Float]?
    public var query: WeightMatrix?
    public var key: WeightMatrix?
    public var value: WeightMatrix?
    /// The attention output projection: d × heads·headDim for full attention, d × kvHeads·headDim
    /// (α and GQA folded) for value-only layers, d × d (fused) for linear layers.
    public var output: WeightMatrix?
    /// Bias of the attention output projection (FLAP's compensation for removed heads). In a layer
    /// without attention it is the removed block's mean output, added as a constant.
    public var outputBias: [Float]?
    public var queryBias: [Float]?
    public var keyBias: [Float]?
    public var valueBias: [Float]?
    public var queryNorm: [Float]?
    public var keyNorm: [Float]?
    public var postAttentionNorm: [Float]?
    public var ffnNorm: [Float]?
    public var gate: WeightMatrix?
    public var up: WeightMatrix?
    public var down: WeightMatrix?
    public var downBias: [Float]?
    public var postFFNNorm: [Float]?

    public init() {}

    /// Every matrix of the layer, for byte and parameter accounting.
    public var matrices: [WeightMatrix] {
        [query, key, value, output, gate, up, down].compactMap { $0 }
    }

    /// Parameters held in vectors (norms and biases).
    public var vectorParameterCount: Int {
        [attentionNorm, queryBias, keyBias, valueBias, outputBias, queryNorm, keyNorm, postAttentionNorm, ffnNorm, downBias, postFFNNorm]
            .reduce(0) { $0 + ($1?.count ?? 0) }
    }
}

/// All weights of a model, and the storage that backs their matrices.
public final class ModelWeights: @unchecked Sendable {  // immutable after construction
    public let tokenEmbedding: WeightMatrix
    public let outputNorm: [Float]
    /// The LM head; the token embedding when the model ties them.
    public let output: WeightMatrix
    public let layers: [LayerWeights]
    /// Per-pair divisors of the RoPE frequencies (`rope_freqs.weight`, ropeDimensions / 2 values:
    /// Llama 3.1's "llama3" scaling, baked in by llama.cpp's converter); nil: none.
    public let ropeFrequencyFactors: [Float]?
    /// Keeps the mapped file and owned buffers alive as long as any matrix may be used.
    private let storage: [AnyObject]

    public init(tokenEmbedding: WeightMatrix, outputNorm: [Float], output: WeightMatrix,
                layers: [LayerWeights], ropeFrequencyFactors: [Float]? = nil, storage: [AnyObject]) {
        self.tokenEmbedding = tokenEmbedding
        self.outputNorm = outputNorm
        self.output = output
        self.layers = layers
        self.ropeFrequencyFactors = ropeFrequencyFactors
        self.storage = storage
    }
}

/// Heap memory for weights the runtime makes itself (dequantized or converted), freed with its owner.
final class OwnedBuffer: @unchecked Sendable {  // written once while building, read-only afterwards
    let pointer: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    convenience init(copying bytes: [UInt8]) {
        self.init(count: bytes.count)
        bytes.withUnsafeBytes { src in
            if let s = src.baseAddress { pointer.copyMemory(from: s, byteCount: bytes.count) }
        }
    }

    deinit { pointer.deallocate() }
}
