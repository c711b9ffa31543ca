/// One GGUF metadata value. Integer and float accessors accept every width, because writers
/// disagree on widths (a head count may be u32 in one file and i32 in another).
///
/// Arrays of numbers or booleans read from a file are `.packed`: their little-endian bytes in one
/// buffer, so a 40-million-element u8 array costs 40 MB, not a 24-byte enum per element. Both
/// array forms answer the same accessors, compare equal when their elements do, and are written
/// back identically.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])
    case packed(GGUFPackedArray)

    /// GGUF's value type codes.
    enum TypeCode: UInt32 {
        case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
        case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

        /// Bytes of one element of a fixed-size type (nil for strings and arrays).
        var fixedSize: Int? {
            switch self {
            case .uint8, .int8, .bool: return 1
            case .uint16, .int16: return 2
            case .uint32, .int32, .float32: return 4
            case .uint64, .int64, .float64: return 8
            case .string, .array: return nil
            }
        }
    }

    var typeCode: TypeCode {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array, .packed: return .array
        }
    }

    /// The value as an integer. Booleans are not integers: a `bool` block count is an error.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(v)
        default: return nil
        }
    }

    public var floatValue: Double? {
        switch self {
        case .float32(let v): return Double(v)
        case .float64(let v): return v
        default: return intValue.map(Double.init)
        }
    }

    public var boolValue: Bool? {
        if case .bool(let v) = self { return v }
        return intValue.map { $0 != 0 }
    }

    public var stringValue: String? {
        if case .string(let v) = self { return v }
        return nil
    }

    /// The elements of an array (a packed array is expanded: prefer the typed accessors or
    /// `arrayCount` for large ones).
    public var arrayValue: [GGUFValue]? {
        switch self {
        case .array(let v): return v
        case .packed(let p): return Array(p)
        default: return nil
        }
    }

    /// Number of elements of an array, without expanding it.
    public var arrayCount: Int? {
        switch self {
        case .array(let v): return v.count
        case .packed(let p): return p.count
        default: return nil
        }
    }

    /// The elements when every one is a string.
    public var stringArray: [String]? { mapArray(\.stringValue) }
    /// The elements when every one is an integer.
    public var intArray: [Int]? { mapArray(\.intValue) }
    /// The elements when every one is a number.
    public var floatArray: [Float]? { mapArray { $0.floatValue.map(Float.init) } }

    private func mapArray<T>(_ transform: (GGUFValue) -> T?) -> [T]? {
        func map<C: Collection<GGUFValue>>(_ items: C) -> [T]? {
            var out: [T] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard let value = transform(item) else { return nil }
                out.append(value)
            }
            return out
        }
        switch self {
        case .array(let items): return map(items)
        case .packed(let items): return map(items)
        default: return nil
        }
    }

    /// A short rendering for tables and messages (long arrays and strings are summarised, control
    /// characters escaped: the text comes from a file).
    public var summary: String {
        func list(_ head: [GGUFValue], count: Int) -> String {
            let shown = head.map(\.summary).joined(separator: ", ")
            return count > head.count ? "[\(shown), ... (\(count) items)]" : "[\(shown)]"
        }
        switch self {
        case .string(let s): return UntrustedText.quoted(s, limit: 60)
        case .array(let items): return list(Array(items.prefix(4)), count: items.count)
        case .packed(let items): return list(Array(items.prefix(4)), count: items.count)
        case .float32(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        case .bool(let v): return "\(v)"
        default: return intValue.map { "\($0)" } ?? "?"
        }
    }

    public static func == (a: GGUFValue, b: GGUFValue) -> Bool {
        switch (a, b) {
        case (.uint8(let x), .uint8(let y)): return x == y
        case (.int8(let x), .int8(let y)): return x == y
        case (.uint16(let x), .uint16(let y)): return x == y
        case (.int16(let x), .int16(let y)): return x == y
        case (.uint32(let x), .uint32(let y)): return x == y
        case (.int32(let x), .int32(let y)): return x == y
        case (.uint64(let x), .uint64(let y)): return x == y
        case (.int64(let x), .int64(let y)): return x == y
        case (.float32(let x), .float32(let y)): return x == y
        case (.float64(let x), .float64(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.packed(let x), .packed(let y)): return x == y
        case (.array, .array), (.array, .packed), (.packed, .array):
            guard a.arrayCount == b.arrayCount, let x = a.arrayValue, let y = b.arrayValue else { return false }
            return x == y
        default: return false
        }
    }
}

/// A GGUF array of one fixed-size element type (numbers or booleans), as its little-endian bytes.
public struct GGUFPackedArray: Sendable, Equatable, RandomAccessCollection {
    let elementType: GGUFValue.TypeCode
    /// `count × elementType.fixedSize` bytes, little-endian.
    let bytes: [UInt8]
    private let stride: Int

    /// nil when `elementType` is not a fixed-size type or `bytes` is not a whole number of elements.
    init?(elementType: GGUFValue.TypeCode, bytes: [UInt8]) {
        guard let size = elementType.fixedSize, bytes.count % size == 0 else { return nil }
        self.elementType = elementType
        self.bytes = bytes
        stride = size
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { bytes.count / stride }

    public subscript(i: Int) -> GGUFValue {
        precondition(i >= 0 && i < endIndex, "packed array index out of range")
        return bytes.withUnsafeBytes { raw in
            let o = i * stride
            switch elementType {
            case .uint8: return .uint8(raw[o])
            case .int8: return .int8(Int8(bitPattern: raw[o]))
            case .bool: return .bool(raw[o] != 0)
            case .uint16: return .uint16(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
            case .int16: return .int16(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int16.self)))
            case .uint32: return .uint32(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
            case .int32: return .int32(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int32.self)))
            case .float32: return .float32(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self))))
            case .uint64: return .uint64(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
            case .int64: return .int64(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int64.self)))
            case .float64: return .float64(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self))))
            case .string, .array: preconditionFailure("a packed array holds fixed-size elements only")
            }
        }
    }

    public static func == (a: GGUFPackedArray, b: GGUFPackedArray) -> Bool {
        a.elementType == b.elementType ? a.bytes == b.bytes : Array(a) == Array(b)
    }
}

/// Text taken from a file (names, keys, strings) made safe for a one-line message: control
/// characters and terminal escapes shown as `\u{..}`, and long text cut to `limit` characters.
public enum UntrustedText {
    public static func escaped(_ text: String, limit: Int = 200) -> String {
        var out = ""
        var shown = 0
        for scalar in text.unicodeScalars {
            if shown == limit {
                return out + "... (\(text.unicodeScalars.count - limit) more characters)"
            }
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
            shown += 1
        }
        return out
    }

    /// `escaped` in double quotes.
    public static func quoted(_ text: String, limit: Int = 200) -> String { "\"\(escaped(text, limit: limit))\"" }
}
