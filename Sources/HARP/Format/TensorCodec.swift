import CKernels

/// Conversions between float rows and stored tensor types, through the kernels' block codecs.
public enum TensorCodec {
    /// Dequantizes `rows` rows of `rowLength` elements stored as `type`.
    public static func decode(_ bytes: UnsafeRawBufferPointer, type: GGMLType, rowLength: Int, rows: Int) -> [Float] {
        let rowBytes = type.byteCount(elements: rowLength) ?? 0
        precondition(rowBytes * rows <= bytes.count, "internal: tensor view smaller than its shape")
        var out = [Float](repeating: 0, count: rowLength * rows)
        out.withUnsafeMutableBufferPointer { dst in
            guard let src = bytes.baseAddress, let d = dst.baseAddress else { return }
            for r in 0..<rows {
                hk_dequantize_row(Int32(type.rawValue), src + r * rowBytes, d + r * rowLength, Int64(rowLength))
            }
        }
        return out
    }

    /// Encodes float rows of `rowLength` elements as `type`.
    public static func encode(_ values: [Float], rowLength: Int, as type: GGMLType) throws -> [UInt8] {
        guard type.isQuantizable else {
            throw HARPError.invalidArgument("cannot write tensors of type \(type.name) (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)")
        }
        guard rowLength > 0, values.count % rowLength == 0, let rowBytes = type.byteCount(elements: rowLength) else {
            throw HARPError.invalidArgument("row length \(rowLength) is not a multiple of the \(type.name) block size \(type.blockSize)")
        }
        let rows = values.count / rowLength
        var out = [UInt8](repeating: 0, count: rows * rowBytes)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                for r in 0..<rows {
                    hk_quantize_row(Int32(type.rawValue), s + r * rowLength, d + r * rowBytes, Int64(rowLength))
                }
            }
        }
        return out
    }
}
