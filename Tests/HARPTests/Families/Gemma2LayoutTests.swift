import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// Gemma 2's settings as llama.cpp's `llama_model_gemma2` reads them, and Mistral's optional
/// sliding window, which llama.cpp's llama graph ignores.
@Suite("Gemma 2 layout; Mistral sliding window")
struct Gemma2LayoutTests {
    func load(_ w: GGUFWriter) throws -> Model {
        let (model, path) = try TinyModel.load(w)
        try? FileManager.default.removeItem(atPath: path)
        return model
    }

    @Test("gemma2 defaults: soft-caps 50 / 30, even layers local with a 4096 window, 1/√headDim")
    func defaults() throws {
        let model = try load(TinyModel.writer(TinyModelSpec(architecture: "gemma2", layers: 4)))
        let c = model.config
        #expect(c.attentionSoftcap == 50 && c.finalLogitSoftcap == 30)
        #expect(c.layers.map(\.slidingWindow) == [4096, nil, 4096, nil])
        #expect(c.layers.allSatisfy { $0.ropeBase == 10_000 })
        #expect(c.attentionScale == nil && c.embeddingScale == Float(64).squareRoot() && c.activation == .gelu)
        #expect(model.weights.layers.allSatisfy { $0.frame.postNorm != nil && $0.mlp.gated?.postNorm != nil && $0.full.queryKeyNorms == nil })
    }

    @Test("gemma2: query_pre_attn_scalar gives the scale 1/√scalar; the 46-layer rule otherwise")
    func queryScale() throws {
        var w = try TinyModel.writer(TinyModelSpec(architecture: "gemma2", layers: 2))
        w.set("gemma2.attention.query_pre_attn_scalar", .float32(144))
        #expect(try load(w).config.attentionScale == 1 / Float(12))
        w.set("gemma2.attention.query_pre_attn_scalar", .float32(0))
        #expect { try load(w) } throws: { "\($0)".contains("gemma2.attention.query_pre_attn_scalar") }
        // llama.cpp's rule for the 27B (46 layers): 1/√(d / heads) = 1/√16 here.
        let large = try load(TinyModel.writer(TinyModelSpec(architecture: "gemma2", layers: 46, d: 64, heads: 4, kvHeads: 2, headDim: 32)))
        #expect(large.config.attentionScale == 1 / Float(16).squareRoot())
    }

    @Test("gemma2: window and soft-cap keys override; the stated scale changes the logits")
    func keysOverride() throws {
        var w = try TinyModel.writer(TinyModelSpec(architecture: "gemma2", layers: 4, context: 128))
        w.set("gemma2.attention.sliding_window", .uint32(32))
        w.set("gemma2.attn_logit_softcapping", .float32(20))
        w.set("gemma2.final_logit_softcapping", .float32(10))
        let model = try load(w)
        #expect(model.config.layers.map(\.slidingWindow) == [32, nil, 32, nil])
        #expect(model.config.attentionSoftcap == 20 && model.config.finalLogitSoftcap == 10)
        let tokens: [Int32] = (0..<48).map { Int32($0 * 7 % 128) }
        func logits(_ m: Model) throws -> [Float] {
            try Transformer(model: m, pool: ComputePool(threads: 2))
                .forward(Batch(tokens: tokens, startPosition: 0), cache: KVCache(config: m.config, contextLength: 64, type: .f32))
        }
        var scaled = w
        scaled.set("gemma2.attention.query_pre_attn_scalar", .float32(4))
        #expect(try logits(load(scaled)).maxAbsDifference(logits(model)) > 1e-3)
        #expect(try logits(model).allSatisfy { abs($0) <= 10 })
    }

    @Test("llama: attention.sliding_window is ignored, as llama.cpp's llama graph does (Mistral 7B)")
    func mistralWindowIgnored() throws {
        let plain = try load(TinyModel.writer(TinyModelSpec()))
        var w = try TinyModel.writer(TinyModelSpec())
        w.set("llama.attention.sliding_window", .uint32(4))
        let windowed = try load(w)
        #expect(windowed.config == plain.config)
        #expect(windowed.config.layers.allSatisfy { $0.slidingWindow == nil })
    }
}
