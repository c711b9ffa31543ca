#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A tensor's entry in a GGUF file's directory.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions in ggml order: `shape[0]` is the innermost (contiguous) one — the row length.
    public let shape: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A GGUF (v2/v3) file mapped into memory. Metadata is parsed once; tensor data stays in the
/// mapping and is viewed without copies. Every offset and size is validated before use, so a
/// damaged file produces `HARPError.invalidGGUF` naming what is wrong, never a crash.
public final class GGUFFile: @unchecked Sendable {  // immutable after init; the mapping is read-only
    public let path: String
    public let version: Int
    /// Metadata in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    private let tensorIndex: [String: Int]
    private let base: UnsafeRawPointer
    private let size: Int
    /// The bytes are this object's own allocation (`init(bytes:name:)`), not a mapping.
    private let owned: Bool

    public init(path: String) throws {
        self.path = path
        owned = false
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw HARPError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw HARPError.io(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw HARPError.io(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        guard size >= 24 else {
            throw HARPError.invalidGGUF(path: path, reason: "file is \(size) bytes, too short for a GGUF header")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw HARPError.io(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(mapped)
        do {
            (version, metadataKeys, metadata, tensors, alignment, tensorIndex) = try GGUFFile.parse(base: base, size: size, path: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
    }

    /// A GGUF file held in memory (a copy of `bytes`, aligned like a mapping); `name` stands for
    /// the path in errors.
    public init(bytes: [UInt8], name: String) throws {
        path = name
        owned = true
        let count = bytes.count
        size = count
        guard count >= 24 else {
            throw HARPError.invalidGGUF(path: name, reason: "file is \(count) bytes, too short for a GGUF header")
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: count) }
        base = UnsafeRawPointer(buffer)
        do {
            (version, metadataKeys, metadata, tensors, alignment, tensorIndex) = try GGUFFile.parse(base: base, size: size, path: name)
        } catch {
            buffer.deallocate()
            throw error
        }
    }

    deinit {
        if owned { UnsafeMutableRawPointer(mutating: base).deallocate() } else { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    private static func parse(base: UnsafeRawPointer, size: Int, path: String) throws
        -> (Int, [String], [String: GGUFValue], [GGUFTensorInfo], Int, [String: Int]) {
        var reader = ByteReader(base: base, size: size, path: path)
        let parsed = try GGUFFile.parse(&reader)
        let index = Dictionary(parsed.tensors.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        return (parsed.version, parsed.keys, parsed.metadata, parsed.tensors, parsed.alignment, index)
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor of this file (valid while the file object lives).
    public func bytes(of tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + tensor.fileOffset, count: tensor.byteCount)
    }

    /// Total bytes of the mapping.
    public var fileSize: Int { size }

    // MARK: - Parsing

    private struct Parsed {
        var version: Int
        var keys: [String]
        var metadata: [String: GGUFValue]
        var tensors: [GGUFTensorInfo]
        var alignment: Int
    }

    private static func parse(_ r: inout ByteReader) throws -> Parsed {
        let magic = try r.read(UInt32.self)
        guard magic == 0x4655_4747 else {  // "GGUF" little-endian
            throw r.error("bad magic (not a GGUF file)")
        }
        let version = Int(try r.read(UInt32.self))
        guard version == 2 || version == 3 else { throw r.error("unsupported GGUF version \(version) (2 and 3 are supported)") }
        // Each tensor entry takes at least 32 bytes, each metadata entry 13: counts beyond that are lies.
        let tensorCount = try r.readCount("tensor count", limit: r.size / 32)
        let kvCount = try r.readCount("metadata count", limit: r.size / 13)

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        for i in 0..<kvCount {
            let key = try r.readString(what: "metadata key #\(i)")
            let code = try r.read(UInt32.self)
            let value = try r.readValue(code: code, key: key, depth: 0)
            if metadata.updateValue(value, forKey: key) != nil { throw r.error("duplicate metadata key \(UntrustedText.quoted(key))") }
            keys.append(key)
        }

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.intValue, a > 0, a & (a - 1) == 0, a <= 1 << 20 else {
                throw r.error("general.alignment must be a power of two, got \(value.summary)")
            }
            alignment = a
        }

        struct RawTensor { var name: String; var shape: [Int]; var type: GGMLType; var offset: Int }
        var raw: [RawTensor] = []
        raw.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let name = try r.readString(what: "tensor name #\(i)")
            let nDims = Int(try r.read(UInt32.self))
            let quoted = UntrustedText.quoted(name)
            guard (1...4).contains(nDims) else { throw r.error("tensor \(quoted) has \(nDims) dimensions (1 to 4 allowed)") }
            var shape: [Int] = []
            for _ in 0..<nDims {
                let d = try r.read(UInt64.self)
                guard d > 0, d < 1 << 40 else { throw r.error("tensor \(quoted) has dimension \(d)") }
                shape.append(Int(d))
            }
            let typeCode = try r.read(UInt32.self)
            guard let type = GGMLType(rawValue: typeCode) else {
                throw r.error("tensor \(quoted) has unknown type \(typeCode)")
            }
            let offset = try r.read(UInt64.self)
            guard offset < UInt64(r.size) else { throw r.error("tensor \(quoted) offset \(offset) is beyond the end of the file (\(r.size) bytes): truncated?") }
            raw.append(RawTensor(name: name, shape: shape, type: type, offset: Int(offset)))
        }

        let dataStart = (r.offset + alignment - 1) / alignment * alignment
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(raw.count)
        var seen = Set<String>()
        for t in raw {
            let quoted = UntrustedText.quoted(t.name)
            guard seen.insert(t.name).inserted else { throw r.error("duplicate tensor \(quoted)") }
            var elements = 1
            for d in t.shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o else { throw r.error("tensor \(quoted) shape \(t.shape) is too large") }
                elements = p
            }
            guard t.shape[0] % t.type.blockSize == 0, let bytes = t.type.byteCount(elements: elements) else {
                throw r.error("tensor \(quoted) row length \(t.shape[0]) is not a multiple of the \(t.type.name) block size \(t.type.blockSize)")
            }
            guard t.offset % alignment == 0 else { throw r.error("tensor \(quoted) offset \(t.offset) is not aligned to \(alignment)") }
            let start = dataStart + t.offset
            guard start <= r.size, bytes <= r.size - start else {
                throw r.error("tensor \(quoted) (\(bytes) bytes at \(start)) extends past the end of the file (\(r.size) bytes): truncated?")
            }
            tensors.append(GGUFTensorInfo(name: t.name, shape: t.shape, type: t.type, fileOffset: start, byteCount: bytes))
        }
        // Two tensors sharing bytes would alias one another's weights (and an edit of one in place
        // would change the other): refuse them.
        let byStart = tensors.sorted { $0.fileOffset < $1.fileOffset }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.fileOffset < a.fileOffset + a.byteCount {
            throw r.error("tensors \(UntrustedText.quoted(a.name)) and \(UntrustedText.quoted(b.name)) overlap (bytes \(b.fileOffset)..<\(a.fileOffset + a.byteCount))")
        }
        return Parsed(version: version, keys: keys, metadata: metadata, tensors: tensors, alignment: alignment)
    }
}

/// Bounds-checked little-endian reads from the mapping.
private struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var offset = 0

    init(base: UnsafeRawPointer, size: Int, path: String) {
        self.base = base
        self.size = size
        self.path = path
    }

    func error(_ reason: String) -> HARPError { .invalidGGUF(path: path, reason: reason) }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let n = MemoryLayout<T>.size
        guard size - offset >= n else { throw error("unexpected end of file at byte \(offset): truncated?") }
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += n
        return T(littleEndian: v)
    }

    /// A u64 count that must be plausible for the file size (guards huge allocations).
    mutating func readCount(_ what: String, limit: Int) throws -> Int {
        let n = try read(UInt64.self)
        guard n <= UInt64(limit) else { throw error("\(what) \(n) is impossible for a \(size)-byte file") }
        return Int(n)
    }

    mutating func readString(what: String) throws -> String {
        let n = try read(UInt64.self)
        guard n <= UInt64(size - offset) else { throw error("\(what): string length \(n) runs past the end of the file") }
        let bytes = UnsafeRawBufferPointer(start: base + offset, count: Int(n))
        offset += Int(n)
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func readValue(code: UInt32, key: String, depth: Int) throws -> GGUFValue {
        let key = UntrustedText.quoted(key)
        guard let type = GGUFValue.TypeCode(rawValue: code) else {
            throw error("metadata key \(key) has unknown value type \(code)")
        }
        return try readElement(type: type, key: key, depth: depth)
    }

    /// One value of a known type; `key` is already quoted for messages.
    private mutating func readElement(type: GGUFValue.TypeCode, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self))
        case .int8: return .int8(try read(Int8.self))
        case .uint16: return .uint16(try read(UInt16.self))
        case .int16: return .int16(try read(Int16.self))
        case .uint32: return .uint32(try read(UInt32.self))
        case .int32: return .int32(try read(Int32.self))
        case .uint64: return .uint64(try read(UInt64.self))
        case .int64: return .int64(try read(Int64.self))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self)))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self)))
        case .bool:
            let b = try read(UInt8.self)
            guard b <= 1 else { throw error("metadata key \(key) has bool value \(b)") }
            return .bool(b == 1)
        case .string: return .string(try readString(what: "metadata key \(key)"))
        case .array:
            guard depth < 4 else { throw error("metadata key \(key) nests arrays too deeply") }
            let elementCode = try read(UInt32.self)
            guard let elementType = GGUFValue.TypeCode(rawValue: elementCode) else {
                throw error("metadata key \(key) is an array of unknown value type \(elementCode)")
            }
            // Numbers and booleans stay packed (about their bytes in memory); each string element
            // takes at least its 8-byte length, each nested array 12 bytes.
            let minimumSize = elementType.fixedSize ?? (elementType == .string ? 8 : 12)
            let length = try read(UInt64.self)
            guard length <= UInt64((size - offset) / minimumSize) else {
                throw error("metadata key \(key) array length \(length) runs past the end of the file")
            }
            let count = Int(length)
            if let fixed = elementType.fixedSize {
                let bytes = Array(UnsafeRawBufferPointer(start: base + offset, count: count * fixed))
                offset += count * fixed
                if elementType == .bool, let bad = bytes.firstIndex(where: { $0 > 1 }) {
                    throw error("metadata key \(key) has bool value \(bytes[bad]) at index \(bad)")
                }
                guard let packed = GGUFPackedArray(elementType: elementType, bytes: bytes) else {
                    throw error("metadata key \(key): cannot pack \(count) elements")
                }
                return .packed(packed)
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try readElement(type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        }
    }
}
