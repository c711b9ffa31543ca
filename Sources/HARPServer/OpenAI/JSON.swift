/// A strict JSON reader (RFC 8259) for request bodies: it names the field where a value is wrong
/// (`messages[0].content: string is not valid UTF-8`) instead of a decoder's opaque message,
/// refuses duplicate keys and limits nesting depth so a hostile body cannot exhaust the stack.
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The literal as written (`4.5`, `-1`, `1e3`), converted on demand.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    static let maxDepth = 64

    /// Parses a whole document. Errors name the field path (or the byte offset for syntax errors).
    static func parse(_ bytes: [UInt8]) throws(RequestError) -> JSONValue {
        var reader = JSONReader(bytes: bytes)
        reader.skipSpace()
        let value = try reader.value(path: "", depth: 0)
        reader.skipSpace()
        guard reader.index == bytes.count else { throw reader.syntax("unexpected data after the JSON value") }
        return value
    }
}

/// A 400 answer: the field (a JSON path such as `messages[1].role`, or "" for the body) and why.
struct RequestError: Error, Equatable, CustomStringConvertible {
    var field: String
    var reason: String
    init(_ field: String, _ reason: String) {
        self.field = field
        self.reason = reason
    }
    var description: String { field.isEmpty ? reason : "\(field): \(reason)" }
}

private struct JSONReader {
    let bytes: [UInt8]
    var index = 0

    func syntax(_ what: String) -> RequestError { RequestError("", "invalid JSON at byte \(index): \(what)") }

    mutating func skipSpace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func expect(_ literal: String, _ value: JSONValue) throws(RequestError) -> JSONValue {
        for byte in literal.utf8 {
            guard peek() == byte else { throw syntax("unknown literal") }
            index += 1
        }
        return value
    }

    mutating func value(path: String, depth: Int) throws(RequestError) -> JSONValue {
        guard depth < JSONValue.maxDepth else { throw RequestError(path, "nested deeper than \(JSONValue.maxDepth) levels") }
        guard let byte = peek() else { throw syntax("unexpected end of the body") }
        switch byte {
        case UInt8(ascii: "{"):
            index += 1
            var fields: [String: JSONValue] = [:]
            skipSpace()
            if peek() == UInt8(ascii: "}") { index += 1; return .object(fields) }
            while true {
                skipSpace()
                guard peek() == UInt8(ascii: "\"") else { throw syntax("expected a string key") }
                let key = try string(path: path + (path.isEmpty ? "" : ".") + "(key)")
                let fieldPath = path.isEmpty ? key : path + "." + key
                guard fields[key] == nil else { throw RequestError(fieldPath, "appears twice") }
                skipSpace()
                guard peek() == UInt8(ascii: ":") else { throw syntax("expected ':'") }
                index += 1
                skipSpace()
                fields[key] = try value(path: fieldPath, depth: depth + 1)
                skipSpace()
                if peek() == UInt8(ascii: ",") { index += 1; continue }
                guard peek() == UInt8(ascii: "}") else { throw syntax("expected ',' or '}'") }
                index += 1
                return .object(fields)
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [JSONValue] = []
            skipSpace()
            if peek() == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(path: "\(path)[\(items.count)]", depth: depth + 1))
                skipSpace()
                if peek() == UInt8(ascii: ",") { index += 1; continue }
                guard peek() == UInt8(ascii: "]") else { throw syntax("expected ',' or ']'") }
                index += 1
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(try string(path: path))
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        default:
            return try number()
        }
    }

    mutating func digits() -> Int {
        let start = index
        while let b = peek(), b >= 0x30, b <= 0x39 { index += 1 }
        return index - start
    }

    mutating func number() throws(RequestError) -> JSONValue {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else {
            guard digits() > 0 else { throw syntax("unexpected character") }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw syntax("expected digits after '.'") }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw syntax("expected digits in the exponent") }
        }
        return .number(String(decoding: bytes[start..<index], as: UTF8.self))
    }

    mutating func hex4() throws(RequestError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw syntax("truncated \\u escape") }
        var v: UInt32 = 0
        for b in bytes[index..<(index + 4)] {
            let d: UInt8
            switch b {
            case 0x30...0x39: d = b - 0x30
            case 0x41...0x46: d = b - 0x41 + 10
            case 0x61...0x66: d = b - 0x61 + 10
            default: throw syntax("bad \\u escape")
            }
            v = v << 4 | UInt32(d)
        }
        index += 4
        return v
    }

    /// A string starting at the opening quote; its bytes must be valid UTF-8.
    mutating func string(path: String) throws(RequestError) -> String {
        index += 1
        var out: [UInt8] = []
        while true {
            guard let b = peek() else { throw syntax("unterminated string") }
            index += 1
            switch b {
            case UInt8(ascii: "\""):
                guard let text = String(validating: out, as: UTF8.self) else { throw RequestError(path, "string is not valid UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                guard let e = peek() else { throw syntax("unterminated string") }
                index += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard peek() == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                            throw RequestError(path, "string has an unpaired UTF-16 surrogate")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw RequestError(path, "string has an unpaired UTF-16 surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw RequestError(path, "string has an unpaired UTF-16 surrogate")
                    }
                    guard let s = Unicode.Scalar(scalar) else { throw RequestError(path, "bad \\u escape") }
                    out.append(contentsOf: Array(String(Character(s)).utf8))
                default:
                    throw syntax("bad escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            case 0x00..<0x20:
                throw syntax("control character in a string (escape it)")
            default:
                out.append(b)
            }
        }
    }
}

/// Typed access to one JSON object's fields, each error naming the field.
struct JSONFields {
    let fields: [String: JSONValue]
    let path: String

    init(_ value: JSONValue, path: String) throws(RequestError) {
        guard case .object(let fields) = value else { throw RequestError(path, "expected an object, got \(value.typeName)") }
        self.fields = fields
        self.path = path
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value, nil when absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let v = fields[key], v != .null else { return nil }
        return v
    }

    func string(_ key: String) throws(RequestError) -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw RequestError(name(key), "expected a string, got \(v.typeName)") }
        return s
    }

    func bool(_ key: String) throws(RequestError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw RequestError(name(key), "expected true or false, got \(v.typeName)") }
        return b
    }

    /// An integer (`4` or `4.0`, not `4.5`) within `range`.
    func int(_ key: String, _ range: ClosedRange<Int64>) throws(RequestError) -> Int64? {
        guard let v = value(key) else { return nil }
        guard case .number(let literal) = v else { throw RequestError(name(key), "expected an integer, got \(v.typeName)") }
        let n: Int64
        if let exact = Int64(literal) {
            n = exact
        } else if let d = Double(literal), d.rounded() == d, d >= -9.2e18, d <= 9.2e18 {
            n = Int64(d)
        } else {
            throw RequestError(name(key), "expected an integer in \(range.lowerBound)...\(range.upperBound), got \(literal)")
        }
        guard range.contains(n) else { throw RequestError(name(key), "must be in \(range.lowerBound)...\(range.upperBound), got \(literal)") }
        return n
    }

    /// A finite number within `range` (described as `rangeText`, e.g. "[0, 2]").
    func number(_ key: String, _ rangeText: String, _ accept: (Double) -> Bool) throws(RequestError) -> Double? {
        guard let v = value(key) else { return nil }
        guard case .number(let literal) = v, let d = Double(literal), d.isFinite else {
            throw RequestError(name(key), "expected a number, got \(v.typeName)")
        }
        guard accept(d) else { throw RequestError(name(key), "must be in \(rangeText), got \(literal)") }
        return d
    }

    func object(_ key: String) throws(RequestError) -> JSONFields? {
        guard let v = value(key) else { return nil }
        return try JSONFields(v, path: name(key))
    }
}
