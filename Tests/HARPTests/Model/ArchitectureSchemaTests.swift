import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// The per-architecture schema both ways: loading accounts for every tensor of a file, and writing
/// a loaded model gives the same tensors back (or refuses).
@Suite("Architecture schema: every tensor accounted for, write ∘ load = identity")
struct ArchitectureSchemaTests {
    /// Tiny models of every family, with the optional tensors each family's files may carry.
    static let tinyFamilies: [(String, ModelConfig, Set<LayerTensor>, [Float]?)] = {
        func config(_ arch: String, tied: Bool = true, edit: (inout ModelConfig) -> Void = { _ in }) -> ModelConfig {
            var c = TinyModel.config(TinyModelSpec(architecture: arch, layers: 4, context: 128))
            c.tiedOutput = tied
            edit(&c)
            return c
        }
        let llama3Factors: [Float] = (0..<8).map { 1 + Float($0) }
        return [
            ("llama", config("llama"), [], nil),
            ("llama (Llama 3.1: rope_freqs, untied, biases)", config("llama", tied: false), [.queryBias, .keyBias, .valueBias, .outputBias], llama3Factors),
            ("qwen2", config("qwen2"), [], nil),
            ("gemma2 (window 32, every other layer)", config("gemma2") { c in
                for l in c.layers.indices where l % 2 == 0 { c.layers[l].slidingWindow = 32 }
                c.attentionSoftcap = 50; c.finalLogitSoftcap = 30
            }, [], nil),
            ("gemma3", config("gemma3") { c in
                for l in c.layers.indices where l % 6 != 5 { c.layers[l].slidingWindow = 16; c.layers[l].ropeBase = 10_000 }
            }, [], nil),
            ("llama pruned (value-only, linear, none, no MLP, biases)", config("llama") { c in
                c.layers[1].attention = .valueOnly(kvHeads: 2, headDim: 16)
                c.layers[2].attention = .linear
                c.layers[3].attention = .none
                c.layers[3].ffnWidth = 0
            }, [.valueBias, .outputBias, .downBias], nil),
            ("deci", config("deci") { c in
                c.layers[2].attention = .linear
                c.layers[3].attention = .none
            }, [.downBias], nil),
        ]
    }()

    /// Every tensor of a file: name → (type, shape, bytes).
    static func tensors(_ path: String) throws -> [String: (GGMLType, [Int], [UInt8])] {
        let file = try GGUFFile(path: path)
        var out: [String: (GGMLType, [Int], [UInt8])] = [:]
        for t in file.tensors { out[t.name] = (t.type, t.shape, Array(file.bytes(of: t))) }
        return out
    }

    /// Writes `path`'s model natively and checks the reload holds the same tensors and structure.
    static func expectRoundTrip(_ path: String, _ name: String) throws {
        let model = try Model(path: path)
        let copy = TinyModel.temporaryPath("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try ModelWriter.write(model, to: copy)
        let before = try tensors(path), after = try tensors(copy)
        #expect(Set(before.keys) == Set(after.keys), "\(name): tensor names")
        for (key, (type, shape, bytes)) in before {
            guard let other = after[key] else { continue }
            #expect(other.0 == type && other.1 == shape, "\(name): \(key) type/shape")
            #expect(other.2 == bytes, "\(name): \(key) bytes")
        }
        let reloaded = try Model(path: copy)
        #expect(reloaded.config == model.config, "\(name): structure")
    }

    @Test("tiny models of every family round-trip through the writer", arguments: 0..<tinyFamilies.count)
    func tinyRoundTrip(_ index: Int) throws {
        let (name, config, optional, factors) = Self.tinyFamilies[index]
        let w = try TinyModel.writer(config: config, seed: UInt64(index + 3), optional: optional, ropeFrequencyFactors: factors)
        let path = TinyModel.temporaryPath("family")
        try w.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try Model(path: path)
        // The builder wrote what the config says, and every optional tensor asked for where a slot takes it.
        #expect(model.config.layers == config.layers, "\(name)")
        #expect(model.config.tiedOutput == config.tiedOutput && model.weights.ropeFrequencyFactors == factors, "\(name)")
        if optional.contains(.queryBias) { #expect(model.weights.layers.allSatisfy { $0.full.biases != nil }) }
        try Self.expectRoundTrip(path, name)
    }

    static let realModels = ["SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m", "qwen2.5-coder-0.5b-instruct-q4_k_m"]

    @Test("real models round-trip through the writer: same names, types, shapes and bytes", arguments: realModels)
    func realRoundTrip(_ file: String) throws {
        let path = Fixtures.packageRoot.appendingPathComponent("models/\(file).gguf").path
        // A missing model fails (tools/fetch-models.sh fetches it), it does not skip.
        try #require(FileManager.default.fileExists(atPath: path), "missing \(path)")
        try Self.expectRoundTrip(path, file)
    }

    func rewritten(_ spec: TinyModelSpec = TinyModelSpec(), edit: (inout GGUFWriter) throws -> Void) throws -> String {
        var w = try TinyModel.writer(spec)
        try edit(&w)
        let path = TinyModel.temporaryPath("stray")
        try w.write(to: path)
        return path
    }

    @Test("a tensor no role claims fails to load, naming the tensor and the architecture", arguments: [
        ("llama", "blk.0.attn_q_norm.weight", [16]),    // a Gemma 3 tensor in a Llama file
        ("llama", "blk.3.attn_norm.weight", [64]),      // a layer the model does not have
        ("llama", "mystery.weight", [8]),
        ("qwen2", "rope_freqs.weight", [8]),            // llama.cpp's qwen2 has no RoPE factors either
        ("gemma2", "blk.1.attn_q.bias", [64]),
    ])
    func strayTensor(arch: String, name: String, shape: [Int]) throws {
        var spec = TinyModelSpec(architecture: arch)
        spec.layers = 3
        let path = try rewritten(spec) { w in
            // The builder writes what each schema requires (Qwen2's Q/K/V biases included): the only
            // stray tensor is the one under test.
            try w.addTensor(name: name, shape: shape, type: .f32, floats: Array(repeating: 1, count: shape.reduce(1, *)))
        }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try Model(path: path) } throws: { error in
            let message = "\(error)"
            return message.contains(name) && message.contains(arch)
        }
    }

    @Test("a layer without attention that still holds its weights is refused, naming the tensor and the layer's kind")
    func strayWeightsInAttentionFreeLayer() throws {
        let path = try rewritten { w in w.set("harp.attention.kind", .array(["full", "none", "full"].map { .string($0) })) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try Model(path: path) } throws: { "\($0)".contains("blk.1.attn_norm.weight") && "\($0)".contains("none attention") }
    }

    @Test("a partial Q/K/V bias set is refused naming the missing tensors")
    func partialBiases() throws {
        let path = try rewritten { w in try w.addTensor(name: "blk.0.attn_q.bias", shape: [64], type: .f32, floats: Array(repeating: 0, count: 64)) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try Model(path: path) } throws: { "\($0)".contains("blk.0.attn_k.bias") }
    }

    @Test("the writer refuses a tensor the target layout has no slot for, and writes nothing")
    func writerRefuses() throws {
        let (model, path) = try TinyModel.load(TinyModel.writer(TinyModelSpec()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var layers = model.weights.layers
        let headDim = 16
        layers[0].full.queryKeyNorms = QueryKeyNorms(query: Array(repeating: 1, count: headDim), key: Array(repeating: 1, count: headDim))
        let w = model.weights
        let edited = Model(file: model.file, config: model.config,
                           weights: ModelWeights(tokenEmbedding: w.tokenEmbedding, outputNorm: w.outputNorm, output: w.output,
                                                 layers: layers, storage: [model]),
                           weightFormat: model.weightFormat)
        let out = TinyModel.temporaryPath("refused")
        #expect { try ModelWriter.write(edited, to: out) } throws: { "\($0)".contains("blk.0.attn_q_norm.weight") && "\($0)".contains("llama") }
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("the tiny builder writes each family's required tensors from its schema")
    func builderFollowsSchema() throws {
        for arch in ["llama", "qwen2", "gemma2", "gemma3"] {
            let config = TinyModel.config(TinyModelSpec(architecture: arch, layers: 2))
            let w = try TinyModel.writer(config: config)
            let schema = try #require(ArchitectureSchema.named(arch))
            let required = Set(schema.tensorSlots(config).filter { $0.presence == .required }.map(\.name))
            #expect(Set(w.tensors.map(\.name)) == required, "\(arch)")
        }
    }
}
