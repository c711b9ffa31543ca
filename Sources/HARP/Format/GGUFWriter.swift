import Foundation

/// Builds a GGUF v3 file: metadata in insertion order, tensors aligned, written atomically
/// (a temporary file beside the destination, flushed, then renamed over it), so a reader never
/// sees a half-written model and a failed write leaves the destination untouched.
public struct GGUFWriter: Sendable {
    public struct Tensor: Sendable {
        public var name: String
        /// ggml order: `shape[0]` is the row length.
        public var shape: [Int]
        public var type: GGMLType
        public var data: [UInt8]
    }

    public private(set) var metadata: [(key: String, value: GGUFValue)] = []
    public private(set) var tensors: [Tensor] = []
    public var alignment = 32

    public init() {}

    /// Sets a metadata value, replacing an earlier one with the same key in place.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
    }

    public mutating func remove(_ key: String) {
        metadata.removeAll { $0.key == key }
    }

    /// Copies every metadata value of `file` (except the alignment, which this writer decides).
    public mutating func copyMetadata(from file: GGUFFile, excluding: (String) -> Bool = { _ in false }) {
        for key in file.metadataKeys where key != "general.alignment" && !excluding(key) {
            if let value = file.metadata[key] { set(key, value) }
        }
    }

    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, data: [UInt8]) throws {
        let elements = shape.reduce(1, *)
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }), shape[0] % type.blockSize == 0,
              type.byteCount(elements: elements) == data.count else {
            throw HARPError.invalidArgument("tensor '\(name)': \(data.count) bytes do not match shape \(shape) of type \(type.name)")
        }
        guard !tensors.contains(where: { $0.name == name }) else {
            throw HARPError.invalidArgument("tensor '\(name)' added twice")
        }
        tensors.append(Tensor(name: name, shape: shape, type: type, data: data))
    }

    /// Adds float data, converting it to `type` (F32, F16, BF16 or a quantized type the kernels can produce).
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, floats: [Float]) throws {
        try addTensor(name: name, shape: shape, type: type, data: TensorCodec.encode(floats, rowLength: shape[0], as: type))
    }

    /// The serialized file.
    public func encoded() throws -> [UInt8] {
        var out = ByteWriter()
        out.u32(0x4655_4747)
        out.u32(3)
        out.u64(UInt64(tensors.count))
        var meta = metadata.filter { $0.key != "general.alignment" }
        if alignment != 32 { meta.append(("general.alignment", .uint32(UInt32(alignment)))) }
        out.u64(UInt64(meta.count))
        for (key, value) in meta {
            out.string(key)
            out.u32(try GGUFWriter.typeCode(of: value, key: key).rawValue)
            try out.value(value, key: key)
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            out.string(t.name)
            out.u32(UInt32(t.shape.count))
            for d in t.shape { out.u64(UInt64(d)) }
            out.u32(t.type.rawValue)
            out.u64(UInt64(offset))
            offsets.append(offset)
            offset = (offset + t.data.count + alignment - 1) / alignment * alignment
        }
        out.pad(to: alignment)
        let dataStart = out.bytes.count
        for (t, o) in zip(tensors, offsets) {
            out.bytes.append(contentsOf: repeatElement(0, count: dataStart + o - out.bytes.count))
            out.bytes.append(contentsOf: t.data)
        }
        out.pad(to: alignment)
        return out.bytes
    }

    /// Writes the file atomically. Refuses to write over `protectedPath` (the input of a conversion).
    public func write(to path: String, protecting protectedPath: String? = nil) throws {
        try stage(to: path, protecting: protectedPath).commit()
    }

    /// Writes the file under a temporary name beside `path`; `commit()` puts it in place. Lets a
    /// caller write several files and publish them only when all succeeded.
    public func stage(to path: String, protecting protectedPath: String? = nil) throws -> StagedFile {
        if let protectedPath, FileManager.default.fileExists(atPath: path),
           (try? sameFile(path, protectedPath)) == true {
            throw HARPError.invalidArgument("output \(path) is the input file; refusing to overwrite it")
        }
        return try StagedFile(bytes: try encoded(), destination: path)
    }

    private func sameFile(_ a: String, _ b: String) throws -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }

    private static func typeCode(of value: GGUFValue, key: String) throws -> GGUFValue.TypeCode {
        if case .array(let items) = value {
            guard let first = items.first else { return .array }
            let code = first.typeCode
            guard items.allSatisfy({ $0.typeCode == code }) else {
                throw HARPError.invalidArgument("metadata key '\(key)': array elements of mixed types")
            }
        }
        return value.typeCode
    }
}

/// Little-endian serialization of GGUF primitives.
private struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u64(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    mutating func pad(to alignment: Int) {
        let rem = bytes.count % alignment
        if rem != 0 { bytes.append(contentsOf: repeatElement(0, count: alignment - rem)) }
    }

    mutating func value(_ v: GGUFValue, key: String) throws {
        switch v {
        case .uint8(let x): bytes.append(x)
        case .int8(let x): bytes.append(UInt8(bitPattern: x))
        case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { bytes.append(contentsOf: $0) }
        case .int16(let x): withUnsafeBytes(of: x.littleEndian) { bytes.append(contentsOf: $0) }
        case .uint32(let x): u32(x)
        case .int32(let x): u32(UInt32(bitPattern: x))
        case .uint64(let x): u64(x)
        case .int64(let x): u64(UInt64(bitPattern: x))
        case .float32(let x): u32(x.bitPattern)
        case .float64(let x): u64(x.bitPattern)
        case .bool(let x): bytes.append(x ? 1 : 0)
        case .string(let s): string(s)
        case .array(let items):
            // An empty array is written as an int32 array: GGUF needs an element type either way.
            u32((items.first?.typeCode ?? .int32).rawValue)
            u64(UInt64(items.count))
            for item in items { try value(item, key: key) }
        case .packed(let items):
            u32(items.elementType.rawValue)
            u64(UInt64(items.count))
            bytes.append(contentsOf: items.bytes)
        }
    }
}
