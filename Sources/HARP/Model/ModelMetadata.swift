/// Typed access to a model file's `<arch>.*` metadata, with errors that name the key.
struct ModelMetadata {
    let file: GGUFFile
    let architecture: String

    init(file: GGUFFile) throws {
        self.file = file
        guard let arch = file.metadata["general.architecture"]?.stringValue, !arch.isEmpty else {
            throw HARPError.invalidModel(path: file.path, reason: "missing metadata key general.architecture (string)")
        }
        architecture = arch
    }

    func fail(_ reason: String) -> HARPError { .invalidModel(path: file.path, reason: reason) }

    subscript(_ suffix: String) -> GGUFValue? { file.metadata["\(architecture).\(suffix)"] }

    func int(_ suffix: String) throws -> Int {
        let key = "\(architecture).\(suffix)"
        guard let value = file.metadata[key] else { throw fail("missing metadata key \(key)") }
        guard let v = value.intValue else { throw fail("metadata key \(key) must be an integer, got \(value.summary)") }
        return v
    }

    func optionalInt(_ suffix: String) throws -> Int? {
        self[suffix] == nil ? nil : try int(suffix)
    }

    func float(_ suffix: String, default fallback: Float? = nil) throws -> Float {
        let key = "\(architecture).\(suffix)"
        guard let value = file.metadata[key] else {
            if let fallback { return fallback }
            throw fail("missing metadata key \(key)")
        }
        guard let v = value.floatValue, v.isFinite else { throw fail("metadata key \(key) must be a number, got \(value.summary)") }
        return Float(v)
    }

    func optionalFloat(_ suffix: String) throws -> Float? {
        self[suffix] == nil ? nil : try float(suffix)
    }

    /// A per-layer value that llama.cpp allows as either one scalar for all layers or an array
    /// with one entry per layer.
    func perLayerInts(_ suffix: String, layers: Int, default fallback: Int? = nil) throws -> [Int] {
        let key = "\(architecture).\(suffix)"
        guard let value = file.metadata[key] else {
            if let fallback { return Array(repeating: fallback, count: layers) }
            throw fail("missing metadata key \(key)")
        }
        if let v = value.intValue { return Array(repeating: v, count: layers) }
        guard let values = value.intArray else {
            throw fail("metadata key \(key) must be an integer or an array of integers, got \(value.summary)")
        }
        guard values.count == layers else {
            throw fail("metadata key \(key) has \(values.count) values for \(layers) layers")
        }
        if let bad = values.firstIndex(where: { $0 < 0 }) {
            throw fail("metadata key \(key): layer \(bad) has negative value \(values[bad])")
        }
        return values
    }

    /// A HARP per-layer string array (`harp.*` keys have no architecture prefix).
    func harpStrings(_ key: String, layers: Int) throws -> [String]? {
        guard let value = file.metadata[key] else { return nil }
        guard let values = value.stringArray else { throw fail("metadata key \(key) must be an array of strings") }
        guard values.count == layers else { throw fail("metadata key \(key) has \(values.count) values for \(layers) layers") }
        return values
    }
}
