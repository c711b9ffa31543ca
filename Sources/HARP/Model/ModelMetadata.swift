/// Typed access to a model file's `<arch>.*` metadata, with errors that name the key (and, through
/// `HARPError.invalidModel`, the file). Every size read here is checked against a plausibility
/// bound, so the products the loader forms from them (widths, tensor sizes, cache bytes) cannot
/// overflow: a hostile value ends in an error naming its key, never in an arithmetic trap.
struct ModelMetadata {
    let file: GGUFFile
    let architecture: String

    /// Largest values any real model has with a wide margin. With them, `heads × headDim`,
    /// `vocab × d` and a layer's cache row fit in 48 bits.
    enum Bound {
        static let layers = 4096
        static let width = 1 << 20          // embedding_length, feed_forward_length
        static let heads = 1 << 14          // head_count, head_count_kv
        static let headDimension = 1 << 14  // key_length, value_length, rope.dimension_count
        static let vocabulary = 1 << 24
        static let context = 1 << 30        // context_length, attention.sliding_window
    }

    init(file: GGUFFile) throws {
        self.file = file
        guard let arch = file.metadata["general.architecture"]?.stringValue, !arch.isEmpty else {
            throw HARPError.invalidModel(path: file.path, reason: "missing metadata key general.architecture (string)")
        }
        architecture = arch
    }

    func fail(_ reason: String) -> HARPError { .invalidModel(path: file.path, reason: reason) }

    subscript(_ suffix: String) -> GGUFValue? { file.metadata["\(architecture).\(suffix)"] }

    func key(_ suffix: String) -> String { "\(architecture).\(suffix)" }

    func int(_ suffix: String) throws -> Int {
        let key = key(suffix)
        guard let value = file.metadata[key] else { throw fail("missing metadata key \(key)") }
        guard let v = value.intValue else { throw fail("metadata key \(key) must be an integer, got \(value.summary)") }
        return v
    }

    func optionalInt(_ suffix: String) throws -> Int? {
        self[suffix] == nil ? nil : try int(suffix)
    }

    /// An integer that must lie in `range` (a size, a count).
    func int(_ suffix: String, in range: ClosedRange<Int>) throws -> Int {
        let v = try int(suffix)
        guard range.contains(v) else { throw fail("metadata key \(key(suffix)) is \(v), outside \(range.lowerBound)...\(range.upperBound)") }
        return v
    }

    func optionalInt(_ suffix: String, in range: ClosedRange<Int>) throws -> Int? {
        self[suffix] == nil ? nil : try int(suffix, in: range)
    }

    func float(_ suffix: String, default fallback: Float? = nil) throws -> Float {
        let key = key(suffix)
        guard let value = file.metadata[key] else {
            if let fallback { return fallback }
            throw fail("missing metadata key \(key)")
        }
        guard let v = value.floatValue, v.isFinite, Float(v).isFinite else {
            throw fail("metadata key \(key) must be a finite number, got \(value.summary)")
        }
        return Float(v)
    }

    func optionalFloat(_ suffix: String) throws -> Float? {
        self[suffix] == nil ? nil : try float(suffix)
    }

    /// A number that must be > 0 (a RoPE base, a norm epsilon, a scale factor).
    func positiveFloat(_ suffix: String, default fallback: Float? = nil) throws -> Float {
        let v = try float(suffix, default: fallback)
        guard v > 0 else { throw fail("metadata key \(key(suffix)) must be positive, got \(v)") }
        return v
    }

    func optionalPositiveFloat(_ suffix: String) throws -> Float? {
        self[suffix] == nil ? nil : try positiveFloat(suffix)
    }

    /// A per-layer value that llama.cpp allows as either one scalar for all layers or an array
    /// with one entry per layer; every value must lie in `range`.
    func perLayerInts(_ suffix: String, layers: Int, in range: ClosedRange<Int>, default fallback: Int? = nil) throws -> [Int] {
        let key = key(suffix)
        guard let value = file.metadata[key] else {
            if let fallback { return Array(repeating: fallback, count: layers) }
            throw fail("missing metadata key \(key)")
        }
        let values: [Int]
        if let v = value.intValue {
            values = Array(repeating: v, count: layers)
        } else if let array = value.intArray {
            guard array.count == layers else {
                throw fail("metadata key \(key) has \(array.count) values for \(layers) layers")
            }
            values = array
        } else {
            throw fail("metadata key \(key) must be an integer or an array of integers, got \(value.summary)")
        }
        if let bad = values.firstIndex(where: { !range.contains($0) }) {
            let which = value.intValue == nil ? "layer \(bad) has value" : "is"
            throw fail("metadata key \(key) \(which) \(values[bad]), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return values
    }

    /// `a × b` for sizes derived from metadata: an error naming `what` instead of an overflow trap.
    func checkedProduct(_ a: Int, _ b: Int, _ what: String) throws -> Int {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow, a >= 0, b >= 0 else { throw fail("\(what): \(a) × \(b) is out of range") }
        return p
    }

    /// A HARP per-layer string array (`harp.*` keys have no architecture prefix).
    func harpStrings(_ key: String, layers: Int) throws -> [String]? {
        guard let value = file.metadata[key] else { return nil }
        guard let values = value.stringArray else { throw fail("metadata key \(key) must be an array of strings") }
        guard values.count == layers else { throw fail("metadata key \(key) has \(values.count) values for \(layers) layers") }
        return values
    }
}
