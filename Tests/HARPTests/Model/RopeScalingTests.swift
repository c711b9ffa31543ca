import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// RoPE frequency scaling read from a file: Llama 3.1's `rope_freqs.weight` and the
/// `rope.scaling.*` keys, applied as llama.cpp applies them.
@Suite("RoPE scaling")
struct RopeScalingTests {
    let spec = TinyModelSpec(layers: 2, context: 256)
    /// Positions far enough that the low-frequency pairs have turned.
    let tokens: [Int32] = (0..<96).map { Int32(($0 * 37 + 11) % 128) }

    func logits(_ model: Model) throws -> [Float] {
        let transformer = Transformer(model: model, pool: ComputePool(threads: 2))
        let cache = try KVCache(config: model.config, contextLength: 128, type: .f32)
        return try transformer.forward(Batch(tokens: tokens, startPosition: 0, allLogits: true), cache: cache)
    }

    func load(_ w: GGUFWriter) throws -> Model {
        let (model, path) = try TinyModel.load(w)
        try? FileManager.default.removeItem(atPath: path)
        return model
    }

    func withFactors(_ factors: [Float]) throws -> GGUFWriter {
        var w = try TinyModel.writer(spec)
        try w.addTensor(name: "rope_freqs.weight", shape: [factors.count], type: .f32, floats: factors)
        return w
    }

    /// Llama 3.1's factors for this head size, from the converter's formula (independent Double code).
    var llama3Factors: [Float] {
        KernelsOpsTests.llama3Factors(headDim: spec.headDim, base: 10_000, factor: 8, low: 1, high: 4, original: 32)
    }

    @Test("rope_freqs.weight changes the logits; all-ones factors change nothing")
    func factorsAreApplied() throws {
        let plain = try logits(load(TinyModel.writer(spec)))
        let factors = llama3Factors
        #expect(factors.contains(1) && factors.contains(8))
        let scaled = try load(withFactors(factors))
        #expect(scaled.weights.ropeFrequencyFactors == factors)
        // Today's bug was a silently ignored tensor: the logits must move.
        #expect(try logits(scaled).maxAbsDifference(plain) > 1e-2)
        #expect(try logits(load(withFactors(Array(repeating: 1, count: spec.headDim / 2)))) == plain)
    }

    @Test("uniform factors c equal linear scaling by c (rope.scaling.factor)")
    func uniformFactorsEqualLinearScaling() throws {
        let byTensor = try logits(load(withFactors(Array(repeating: 4, count: spec.headDim / 2))))
        var linear = try TinyModel.writer(spec)
        linear.set("llama.rope.scaling.type", .string("linear"))
        linear.set("llama.rope.scaling.factor", .float32(4))
        let model = try load(linear)
        #expect(model.config.ropeFreqScale == 0.25)
        let byKey = try logits(model)
        // θ/4 and θ·0.25 differ only in float rounding.
        #expect(byKey.maxAbsDifference(byTensor) < 1e-3)
        #expect(byKey.maxAbsDifference(try logits(load(TinyModel.writer(spec)))) > 1e-2)
    }

    @Test("rope.scaling.type none ignores the factor; the older rope.scale_linear is read")
    func scalingTypes() throws {
        var none = try TinyModel.writer(spec)
        none.set("llama.rope.scaling.type", .string("none"))
        none.set("llama.rope.scaling.factor", .float32(8))
        #expect(try load(none).config.ropeFreqScale == 1)
        var old = try TinyModel.writer(spec)
        old.set("llama.rope.scale_linear", .float32(2))
        #expect(try load(old).config.ropeFreqScale == 0.5)
    }

    @Test("unsupported scaling is refused naming the key", arguments: [
        ("llama.rope.scaling.type", GGUFValue.string("yarn"), "llama.rope.scaling.type"),
        ("llama.rope.scaling.type", GGUFValue.string("llama3"), "llama.rope.scaling.type"),
        ("llama.rope.scaling.type", GGUFValue.uint32(1), "llama.rope.scaling.type"),
        ("llama.rope.scaling.attn_factor", GGUFValue.float32(1.5), "llama.rope.scaling.attn_factor"),
    ])
    func refused(key: String, value: GGUFValue, named: String) throws {
        var w = try TinyModel.writer(spec)
        w.set(key, value)
        #expect { try load(w) } throws: { "\($0)".contains(named) }
    }

    @Test("bad rope_freqs.weight is refused naming the tensor")
    func badFactors() throws {
        var zero = llama3Factors
        zero[3] = 0
        #expect { try load(withFactors(zero)) } throws: { "\($0)".contains("rope_freqs.weight") }
        #expect { try load(withFactors(Array(llama3Factors.dropLast()))) } throws: { "\($0)".contains("rope_freqs.weight") }
    }

    @Test("the writer keeps rope_freqs.weight (native and deci)", arguments: ModelLayout.allCases)
    func writerKeepsFactors(layout: ModelLayout) throws {
        let model = try load(withFactors(llama3Factors))
        let path = TinyModel.temporaryPath("rope-\(layout)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ModelWriter.write(model, to: path, layout: layout)
        let reloaded = try Model(path: path)
        #expect(reloaded.weights.ropeFrequencyFactors == llama3Factors)
        #expect(try logits(reloaded) == logits(model))
    }
}
