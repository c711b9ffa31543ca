/// How weights are held in memory after loading.
public enum WeightFormat: String, Sendable, CaseIterable {
    /// As stored in the file, viewed in place (no copies).
    case native
    /// Every matrix dequantized to float32 at load (the mode that matches F32 references).
    case f32
}

/// Fetches tensors by name, checking shapes and types, and converting to the requested format.
/// Errors name the tensor and the layer it belongs to.
final class TensorLoader {
    let file: GGUFFile
    let format: WeightFormat
    private(set) var storage: [AnyObject]

    init(file: GGUFFile, format: WeightFormat) {
        self.file = file
        self.format = format
        storage = [file]
    }

    private func fail(_ reason: String) -> HARPError { .invalidModel(path: file.path, reason: reason) }

    func has(_ name: String) -> Bool { file.tensor(named: name) != nil }

    /// A 2-D matrix of `rows` outputs × `cols` inputs (GGUF shape [cols, rows]).
    func matrix(_ name: String, rows: Int, cols: Int, context: String) throws -> WeightMatrix {
        guard let info = file.tensor(named: name) else { throw fail("\(context): missing tensor \(name)") }
        guard info.shape == [cols, rows] || (info.shape.count > 2 && info.shape == [cols, rows] + Array(repeating: 1, count: info.shape.count - 2)) else {
            throw fail("\(context): tensor \(name) has shape \(info.shape), expected [\(cols), \(rows)]")
        }
        guard info.type.isComputable else {
            throw HARPError.unsupportedTensorType(path: file.path, tensor: name, type: info.type.rawValue)
        }
        let bytes = file.bytes(of: info)
        guard let base = bytes.baseAddress else { throw fail("\(context): tensor \(name) is empty") }
        switch format {
        case .native:
            return WeightMatrix(name: name, type: info.type, rows: rows, cols: cols, data: base)
        case .f32:
            if info.type == .f32 { return WeightMatrix(name: name, type: .f32, rows: rows, cols: cols, data: base) }
            let floats = TensorCodec.decode(bytes, type: info.type, rowLength: cols, rows: rows)
            let buffer = OwnedBuffer(count: floats.count * 4)
            floats.withUnsafeBytes { src in
                if let s = src.baseAddress { buffer.pointer.copyMemory(from: s, byteCount: src.count) }
            }
            storage.append(buffer)
            return WeightMatrix(name: name, type: .f32, rows: rows, cols: cols, data: UnsafeRawPointer(buffer.pointer))
        }
    }

    func optionalMatrix(_ name: String, rows: Int, cols: Int, context: String) throws -> WeightMatrix? {
        has(name) ? try matrix(name, rows: rows, cols: cols, context: context) : nil
    }

    /// A 1-D vector (norm weights, biases), always as floats.
    func vector(_ name: String, count: Int, context: String) throws -> [Float] {
        guard let info = file.tensor(named: name) else { throw fail("\(context): missing tensor \(name)") }
        guard info.elementCount == count, info.shape[0] == count else {
            throw fail("\(context): tensor \(name) has shape \(info.shape), expected [\(count)]")
        }
        guard info.type.isComputable else {
            throw HARPError.unsupportedTensorType(path: file.path, tensor: name, type: info.type.rawValue)
        }
        return TensorCodec.decode(file.bytes(of: info), type: info.type, rowLength: count, rows: 1)
    }

    func optionalVector(_ name: String, count: Int, context: String) throws -> [Float]? {
        has(name) ? try vector(name, count: count, context: context) : nil
    }
}
