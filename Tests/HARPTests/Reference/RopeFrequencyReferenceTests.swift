import Foundation
import Testing
import HARPTestSupport
@testable import HARP

/// Tier 3: Llama 3.1-style RoPE scaling against llama.cpp. SmolLM2-135M with one extra tensor,
/// `rope_freqs.weight` holding the "llama3" factors for its head size and RoPE base, measured by
/// Benchmarks/references/measure-rope-freqs.py (F32 weights). The bug this catches: the tensor was
/// ignored and the continuation stayed that of the file without it.
@Suite("Llama 3.1 RoPE factors vs llama.cpp", .serialized)
struct RopeFrequencyReferenceTests {
    static let referencePath = Fixtures.packageRoot.appendingPathComponent("Benchmarks/references/smollm2-rope-freqs-llamacpp.json").path

    typealias Case = SmolLM2ReferenceTests.Case

    static func reference() throws -> [String: Any] {
        // A missing model or reference fails (tools/setup.sh fetches the model), it does not skip.
        try #require(Fixtures.hasSmolLM2, "missing \(Fixtures.smolLM2Path)")
        let data = try Data(contentsOf: URL(fileURLWithPath: referencePath))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// SmolLM2 as stored plus `rope_freqs.weight`, written with the project's writer, loaded as F32.
    static func model(factors: [Float]?) throws -> Model {
        let source = try GGUFFile(path: Fixtures.smolLM2Path)
        var w = GGUFWriter()
        w.copyMetadata(from: source)
        for t in source.tensors { try w.addTensor(name: t.name, shape: t.shape, type: t.type, data: Array(source.bytes(of: t))) }
        if let factors { try w.addTensor(name: "rope_freqs.weight", shape: [factors.count], type: .f32, floats: factors) }
        let path = TinyModel.temporaryPath("smollm2-rope-freqs")
        try w.write(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try Model(path: path, weights: .f32)
    }

    /// Our factors, computed in Double from the converter's formula (independent of the script's Python).
    static var factors: [Float] {
        KernelsOpsTests.llama3Factors(headDim: 64, base: 100_000, factor: 8, low: 1, high: 4, original: 8192)
    }

    func top(_ logits: [Float], _ k: Int) -> [Int] { Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(k)) }

    /// Top-10 and greedy up to the first near-tie against one section of the reference; returns the
    /// largest top-10 logit difference.
    func compare(_ model: Model, _ cases: [Case]) throws -> Float {
        let t = Transformer(model: model, pool: ComputePool())
        var worst: Float = 0
        for c in cases {
            let cache = try KVCache(config: t.config, contextLength: 256, type: .f32)
            let logits = try t.forward(Batch(tokens: c.prompt, startPosition: 0), cache: cache)
            #expect(top(logits, 10) == c.top10.map(\.id), "prompt of \(c.prompt.count) tokens")
            for (id, logit) in c.top10 { worst = max(worst, abs(logits[id] - logit)) }
            let decisive = c.margins.firstIndex { $0 < 0.05 } ?? c.greedy.count
            let ours = try greedyTokens(t, prompt: c.prompt, steps: decisive, contextLength: 256)
            #expect(ours == Array(c.greedy.prefix(decisive)), "prompt of \(c.prompt.count) tokens")
        }
        return worst
    }

    @Test("the factors equal those the reference script computed (converter formula, Python)")
    func factorsMatchScript() throws {
        let json = try Self.reference()
        let theirs = try #require(json["rope_freqs"] as? [Double])
        #expect(theirs.count == Self.factors.count)
        #expect(zip(theirs, Self.factors).allSatisfy { abs($0 - Double($1)) < 1e-6 })
    }

    @Test("with rope_freqs.weight: top-10 and greedy equal llama.cpp's; without it, llama.cpp's other output")
    func matchesLlamaCpp() throws {
        let json = try Self.reference()
        let with = try SmolLM2ReferenceTests.cases(json, "with_rope_freqs"), without = try SmolLM2ReferenceTests.cases(json, "without_rope_freqs")
        let scaled = try Self.model(factors: Self.factors)
        #expect(try compare(scaled, with) < 1e-2)
        #expect(try compare(Self.model(factors: nil), without) < 1e-2)
        // The reference itself moves with the factors by much more than the tolerance on the long
        // prompt, so matching both sections means the factors are applied (and only when present).
        let long = try #require(with.last), longWithout = try #require(without.last)
        let shift = zip(long.top10, longWithout.top10).map { abs($0.logit - $1.logit) }.max() ?? 0
        #expect(long.greedy != longWithout.greedy || shift > 0.1)
    }
}
