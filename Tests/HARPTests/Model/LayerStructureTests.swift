import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// Tier-2 identities on tiny random models: pruned layer kinds compute what the math says.
@Suite("Per-layer structure")
struct LayerStructureTests {
    let spec = TinyModelSpec()

    func logits(_ model: Model, tokens: [Int32]) throws -> [Float] {
        let transformer = Transformer(model: model, pool: ComputePool(threads: 2))
        let cache = try KVCache(config: model.config, contextLength: 32, type: .f32)
        return try transformer.forward(Batch(tokens: tokens, startPosition: 0, allLogits: true), cache: cache)
    }

    /// Reads a tensor of a writer back as floats.
    func floats(_ w: GGUFWriter, _ name: String) throws -> [Float] {
        let t = try #require(w.tensors.first { $0.name == name })
        return t.data.withUnsafeBytes { TensorCodec.decode($0, type: t.type, rowLength: t.shape[0], rows: t.data.count / (t.type.byteCount(elements: t.shape[0]) ?? 1)) }
    }

    /// W_O′ (d × kvHeads·headDim): the column blocks of W_O that share a KV head, summed.
    func foldedOutput(_ wo: [Float], d: Int, heads: Int, kvHeads: Int, headDim: Int) -> [Float] {
        let group = heads / kvHeads
        var out = [Float](repeating: 0, count: d * kvHeads * headDim)
        for r in 0..<d { for h in 0..<heads { for i in 0..<headDim {
            out[r * kvHeads * headDim + (h / group) * headDim + i] += wo[r * heads * headDim + h * headDim + i]
        } } }
        return out
    }

    func replacing(_ w: GGUFWriter, removing names: [String]) -> GGUFWriter {
        var copy = GGUFWriter()
        for (k, v) in w.metadata { copy.set(k, v) }
        for t in w.tensors where !names.contains(t.name) { try? copy.addTensor(name: t.name, shape: t.shape, type: t.type, data: t.data) }
        return copy
    }

    @Test("per-layer arrays with equal values equal scalar keys")
    func arraysEqualScalars() throws {
        var arrays = spec
        arrays.perLayerArrays = true
        let (a, pa) = try TinyModel.load(TinyModel.writer(spec))
        let (b, pb) = try TinyModel.load(TinyModel.writer(arrays))
        defer { try? FileManager.default.removeItem(atPath: pa); try? FileManager.default.removeItem(atPath: pb) }
        #expect(a.config == b.config)
        #expect(try logits(a, tokens: [3, 9, 27, 81]) == logits(b, tokens: [3, 9, 27, 81]))
    }

    @Test("a value-only layer equals full attention on a one-token sequence")
    func valueOnlyEqualsFullForOneToken() throws {
        let dense = try TinyModel.writer(spec)
        let layer = 1
        var pruned = replacing(dense, removing: ["blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_output.weight"])
        let wo = try floats(dense, "blk.1.attn_output.weight")
        let folded = foldedOutput(wo, d: spec.d, heads: spec.heads, kvHeads: spec.kvHeads, headDim: spec.headDim)
        try pruned.addTensor(name: "blk.1.attn_output.weight", shape: [spec.kvHeads * spec.headDim, spec.d], type: .f32, floats: folded)
        pruned.set("harp.attention.kind", .array((0..<spec.layers).map { .string($0 == layer ? "value-only" : "full") }))

        let (a, pa) = try TinyModel.load(dense)
        let (b, pb) = try TinyModel.load(pruned)
        defer { try? FileManager.default.removeItem(atPath: pa); try? FileManager.default.removeItem(atPath: pb) }
        #expect(b.config.layers[layer].attention == .valueOnly(kvHeads: spec.kvHeads, headDim: spec.headDim))
        let diff = try logits(a, tokens: [42]).maxAbsDifference(logits(b, tokens: [42]))
        #expect(diff < 1e-4)
        // On longer sequences the two differ: the dense layer mixes positions.
        #expect(try logits(a, tokens: [42, 7, 19]).maxAbsDifference(logits(b, tokens: [42, 7, 19])) > 1e-3)
    }

    @Test("the KV cache holds only layers with full attention")
    func kvCacheSlots() throws {
        var w = try TinyModel.writer(spec)
        w.set("harp.attention.kind", .array([.string("full"), .string("none"), .string("full")]))
        w = replacing(w, removing: ["blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight", "blk.1.attn_output.weight", "blk.1.attn_norm.weight"])
        let (m, p) = try TinyModel.load(w)
        defer { try? FileManager.default.removeItem(atPath: p) }
        let dense = try KVCache(config: TinyModel.load(TinyModel.writer(spec)).0.config, contextLength: 16)
        let pruned = try KVCache(config: m.config, contextLength: 16)
        #expect(pruned.slotOfLayer == [0, nil, 1])
        #expect(pruned.byteCount * 3 == dense.byteCount * 2)
    }

    @Test("corrupt per-layer metadata names the key or layer")
    func corruptMetadata() throws {
        func expectError(_ w: GGUFWriter, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                let (_, p) = try TinyModel.load(w)
                try? FileManager.default.removeItem(atPath: p)
                Issue.record("expected an error mentioning '\(text)'", sourceLocation: sourceLocation)
            } catch {
                #expect("\(error)".contains(text), "\(error)", sourceLocation: sourceLocation)
            }
        }
        var wrongLength = try TinyModel.writer(spec)
        wrongLength.set("llama.feed_forward_length", .array([.int32(96), .int32(96)]))
        expectError(wrongLength, "llama.feed_forward_length has 2 values for 3 layers")

        var indivisible = try TinyModel.writer(spec)
        indivisible.set("llama.attention.head_count_kv", .array([.int32(2), .int32(3), .int32(2)]))
        expectError(indivisible, "layer 1: head_count 4 is not a positive multiple of head_count_kv 3")

        var missing = try TinyModel.writer(spec)
        missing.set("harp.attention.kind", .array([.string("full"), .string("full"), .string("value-only")]))
        missing = replacing(missing, removing: ["blk.2.attn_v.weight"])
        expectError(missing, "layer 2: missing tensor blk.2.attn_v.weight")

        var badShape = try TinyModel.writer(spec)
        badShape.set("harp.attention.kind", .array([.string("full"), .string("value-only"), .string("full")]))
        expectError(badShape, "layer 1: tensor blk.1.attn_output.weight has shape [64, 64], expected [32, 64]")

        var badKind = try TinyModel.writer(spec)
        badKind.set("harp.attention.kind", .array([.string("full"), .string("sparse"), .string("full")]))
        expectError(badKind, "layer 1: harp.attention.kind \"sparse\"")
    }
}
