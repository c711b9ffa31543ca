/// Makes weight matrices from computed floats (the pruner's new weights, converted copies) and
/// keeps their memory alive for the `ModelWeights` built from them.
public final class WeightBuilder {
    public private(set) var storage: [AnyObject]

    /// `keeping` holds storage the new weights may still point into (e.g. the source file).
    public init(keeping storage: [AnyObject] = []) {
        self.storage = storage
    }

    /// A matrix of `rows` × `cols` floats, stored as `type`.
    public func matrix(_ name: String, rows: Int, cols: Int, floats: [Float], type: GGMLType = .f32) throws -> WeightMatrix {
        guard floats.count == rows * cols else {
            throw HARPError.invalidArgument("\(name): \(floats.count) values for a \(rows) × \(cols) matrix")
        }
        let bytes = try TensorCodec.encode(floats, rowLength: cols, as: type)
        return matrix(name, rows: rows, cols: cols, bytes: bytes, type: type)
    }

    /// A matrix from already encoded rows.
    public func matrix(_ name: String, rows: Int, cols: Int, bytes: [UInt8], type: GGMLType) -> WeightMatrix {
        let buffer = OwnedBuffer(copying: bytes)
        storage.append(buffer)
        return WeightMatrix(name: name, type: type, rows: rows, cols: cols, data: UnsafeRawPointer(buffer.pointer))
    }

    /// `m` converted to `type` (the same matrix when it already has that type).
    public func converted(_ m: WeightMatrix, to type: GGMLType) throws -> WeightMatrix {
        guard m.type != type else { return m }
        guard m.cols % type.blockSize == 0 else {
            throw HARPError.invalidArgument("\(m.name): rows of \(m.cols) values cannot be stored as \(type.name) (blocks of \(type.blockSize))")
        }
        return try matrix(m.name, rows: m.rows, cols: m.cols, floats: m.floats(), type: type)
    }

    public func weights(tokenEmbedding: WeightMatrix, outputNorm: [Float], output: WeightMatrix, layers: [LayerWeights],
                        ropeFrequencyFactors: [Float]? = nil) -> ModelWeights {
        ModelWeights(tokenEmbedding: tokenEmbedding, outputNorm: outputNorm, output: output, layers: layers,
                     ropeFrequencyFactors: ropeFrequencyFactors, storage: storage)
    }
}
