import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// Crafted metadata: every size the loader derives is checked (an error naming the key and the
/// file, never an arithmetic trap), and values that cannot describe a model are refused.
@Suite("Hostile model metadata")
struct HostileMetadataTests {
    /// Loads `writer` as a model; the error when it is refused.
    static func load(_ writer: GGUFWriter) throws -> Result<Model, HARPError> {
        let path = TinyModel.temporaryPath("hostile")
        try writer.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do { return .success(try Model(path: path)) } catch let error as HARPError { return .failure(error) }
    }

    /// The one-line error a loaded `writer` gives, which must name `key` and the file.
    static func refusal(_ writer: GGUFWriter, key: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String? {
        let path = TinyModel.temporaryPath("hostile")
        try writer.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try Model(path: path)
            Issue.record("\(key): accepted", sourceLocation: sourceLocation)
            return nil
        } catch let error as HARPError {
            let text = error.description
            #expect(text.contains(key) && text.hasPrefix(path), "\(text)", sourceLocation: sourceLocation)
            #expect(!text.contains("\n"), sourceLocation: sourceLocation)
            return text
        }
    }

    static func llama(_ edit: (inout GGUFWriter) -> Void) throws -> GGUFWriter {
        var w = try TinyFamily.writer("llama")
        edit(&w)
        return w
    }

    @Test("the issue's reproducers: each a one-line error naming the key and the file")
    func reproducers() throws {
        let cases: [(String, GGUFValue)] = [
            ("llama.attention.key_length", .uint64(1 << 62)),
            ("llama.feed_forward_length", .int32(-1)),
            ("llama.attention.head_count_kv", .uint32(0)),
            ("llama.rope.freq_base", .float32(0)),
            ("llama.rope.freq_base", .float32(-10_000)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(0)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(-1e-5)),
            ("llama.rope.scale_linear", .float32(0)),
            ("llama.block_count", .bool(true)),
            ("llama.context_length", .uint32(0)),
            ("llama.embedding_length", .int64(.max)),
            ("llama.attention.head_count", .uint64(1 << 62)),
        ]
        for (key, value) in cases {
            _ = try Self.refusal(Self.llama { $0.set(key, value) }, key: key)
        }
        let gemma = try #require(try Self.refusal(
            TinyFamily.writer("gemma3").setting("gemma3.attention.sliding_window", .uint64(1 << 62)), key: "gemma3.attention.sliding_window"))
        #expect(gemma.contains("outside"))
    }

    @Test("key_length = 2^62 in the real SmolLM2 metadata is an error, not a trap")
    func smolLM2KeyLength() throws {
        #expect(Fixtures.hasSmolLM2, "models/SmolLM2-135M-Instruct.Q4_1.gguf is missing (tools/setup.sh fetches it)")
        let file = try GGUFFile(path: Fixtures.smolLM2Path)
        var w = GGUFWriter()
        w.copyMetadata(from: file)
        w.set("llama.attention.key_length", .uint64(1 << 62))
        let text = try #require(try Self.refusal(w, key: "llama.attention.key_length"))
        #expect(text.contains("4611686018427387904"))
    }

    @Test("head_count_kv = 0 means linear attention in the deci layout only")
    func zeroKVHeads() throws {
        // A deci file whose layer 1 is linear, marked only by head_count_kv = 0 (no harp.attention.kind).
        var config = TinyModel.config(TinyModelSpec(architecture: "deci", layers: 3, vocab: TinyFamily.vocabularySize, context: 128))
        config.layers[1].attention = .linear
        var deci = try TinyModel.writer(config: config)
        deci.remove("harp.attention.kind")
        for (key, value) in TinyFamily.tokenizerMetadata() { deci.set(key, value) }
        let model = try Self.load(deci).get()
        #expect(model.config.layers.map(\.attention.name) == ["full", "linear", "full"])
        _ = try Self.refusal(Self.llama { $0.set("llama.attention.head_count_kv", .array([.int32(2), .int32(0), .int32(2)])) },
                             key: "llama.attention.head_count_kv")
        _ = try Self.refusal(Self.llama { $0.set("llama.attention.head_count", .array([.int32(4), .int32(0), .int32(4)])) },
                             key: "llama.attention.head_count")
    }

    @Test("a sliding window longer than the context makes a cache of the context")
    func longWindow() throws {
        let model = try Self.load(TinyFamily.writer("gemma3").setting("gemma3.attention.sliding_window", .uint32(1 << 30))).get()
        let cache = try KVCache(config: model.config, contextLength: 32)
        let dense = try KVCache(config: ModelConfig(architecture: "x", embeddingLength: 64, vocabularySize: 8, contextLength: 32,
                                                   layers: model.config.layers.map { var l = $0; l.slidingWindow = nil; return l },
                                                   normEpsilon: 1e-6, ropeDimensions: 16, ropeLayout: .neox, tiedOutput: true), contextLength: 32)
        #expect(cache.byteCount == dense.byteCount)
    }

    @Test("a KV cache too large to allocate is an error")
    func hugeCache() throws {
        let model = try Self.load(TinyFamily.writer("llama")).get()
        #expect(throws: HARPError.self) { try KVCache(config: model.config, sequences: 1 << 40, contextLength: 16) }
        #expect(throws: HARPError.self) { try KVCache(config: model.config, sequences: 65_536, contextLength: 1 << 62) }  // overflows
        #expect(throws: HARPError.self) { try KVCache(config: model.config, sequences: 65_536, contextLength: 1 << 30) }  // 4 PB
    }

    /// Each family's numeric keys (scalars and per-layer arrays), set in turn to 0, −1, 2^31, 2^62
    /// and Int64.max in their own type where it can hold the value, and as int64 and float32:
    /// every load ends in a HARPError or a model whose KV cache and a 2-token forward pass work.
    @Test("structure-aware metadata sweep: every numeric key of every family", arguments: TinyFamily.families)
    func metadataSweep(family: String) throws {
        let base = try TinyFamily.writer(family)
        let path = TinyModel.temporaryPath("sweep-\(family)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let extremes: [Int64] = [0, -1, 1 << 31, 1 << 62, .max]
        var loaded = 0, refused = 0
        for (key, original) in base.metadata {
            for value in extremes {
                for replacement in Self.variants(of: original, value) {
                    var w = base
                    w.set(key, replacement)
                    try w.write(to: path)
                    do {
                        let file = try GGUFFile(path: path)
                        let model = try Model(file: file)
                        let cache = try KVCache(config: model.config, contextLength: 16)
                        let transformer = Transformer(model: model, pool: ComputePool(threads: 1))
                        _ = try transformer.forward(Batch(tokens: [1, 2], startPosition: 0, allLogits: false), cache: cache)
                        _ = try TokenizerLoader.load(from: file).encode("ab c", parseSpecial: true)
                        loaded += 1
                    } catch is HARPError {
                        refused += 1
                    } catch {
                        Issue.record("\(key) = \(replacement.summary): \(type(of: error)) \(error)")
                    }
                }
            }
        }
        // Both outcomes occur: the sweep reached the loader's checks and the model behind them.
        #expect(loaded > 0 && refused > 100, "loaded \(loaded), refused \(refused)")
    }

    /// `value` as `original`'s type when it fits, and as int64 and float32 (arrays: every element).
    static func variants(of original: GGUFValue, _ value: Int64) -> [GGUFValue] {
        if let items = original.arrayValue {
            guard let first = items.first, first.intValue != nil || first.floatValue != nil, first.stringValue == nil else { return [] }
            return variants(of: first, value).map { element in .array(Array(repeating: element, count: items.count)) }
        }
        var out: [GGUFValue] = []
        switch original {
        case .uint8: if let v = UInt8(exactly: value) { out.append(.uint8(v)) }
        case .int8: if let v = Int8(exactly: value) { out.append(.int8(v)) }
        case .uint16: if let v = UInt16(exactly: value) { out.append(.uint16(v)) }
        case .int16: if let v = Int16(exactly: value) { out.append(.int16(v)) }
        case .uint32: if let v = UInt32(exactly: value) { out.append(.uint32(v)) }
        case .int32: if let v = Int32(exactly: value) { out.append(.int32(v)) }
        case .uint64: if let v = UInt64(exactly: value) { out.append(.uint64(v)) }
        case .float32, .float64, .int64: break
        case .bool, .string, .array, .packed: return []
        }
        out.append(.int64(value))
        out.append(.float32(Float(value)))
        return out
    }
}

extension GGUFWriter {
    /// A copy with one metadata value set.
    func setting(_ key: String, _ value: GGUFValue) -> GGUFWriter {
        var copy = self
        copy.set(key, value)
        return copy
    }
}
