import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// Tier 2: the Gemma layout read from metadata, and the sliding-window KV buffers, on tiny
/// random-weight models.
@Suite("Gemma layout and sliding-window cache")
struct GemmaStructureTests {
    /// A tiny Gemma 3 model: the Llama tensors plus post-norms and per-head query/key norms.
    static func gemma3Writer(layers: Int = 6, window: Int? = 4, edit: (inout GGUFWriter) -> Void = { _ in }) throws -> GGUFWriter {
        let spec = TinyModelSpec(architecture: "gemma3", layers: layers, context: 512)
        // The schema adds Gemma 3's post-norms and per-head query/key norms.
        var w = try TinyModel.writer(spec)
        if let window { w.set("gemma3.attention.sliding_window", .uint32(UInt32(window))) }
        edit(&w)
        return w
    }

    @Test("gemma3: 5 local : 1 global, local RoPE base 10000, window from metadata")
    func defaultPattern() throws {
        let (model, path) = try TinyModel.load(Self.gemma3Writer(layers: 12) { $0.set("gemma3.rope.freq_base", .float32(1e6)) })
        defer { try? FileManager.default.removeItem(atPath: path) }
        let local = (0..<12).map { $0 % 6 != 5 }
        #expect(model.config.layers.map { $0.slidingWindow != nil } == local)
        #expect(model.config.layers.map(\.ropeBase) == local.map { $0 ? 10_000 : 1e6 })
        #expect(model.config.layers.compactMap(\.slidingWindow).allSatisfy { $0 == 4 })
        #expect(model.config.embeddingScale == Float(64).squareRoot())
        #expect(model.weights.layers.allSatisfy { $0.frame.postNorm != nil && $0.full.queryKeyNorms != nil })
    }

    @Test("gemma3: pattern and local RoPE base keys override the defaults")
    func explicitPattern() throws {
        let flags: [Bool] = [true, false, true, true, false, false]
        let (model, path) = try TinyModel.load(Self.gemma3Writer { w in
            w.set("gemma3.rope.freq_base", .float32(1e6))
            w.set("gemma3.rope.freq_base_swa", .float32(5000))
            w.set("gemma3.attention.sliding_window_pattern", .array(flags.map { .bool($0) }))
        })
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(model.config.layers.map { $0.slidingWindow != nil } == flags)
        #expect(model.config.layers.map(\.ropeBase) == flags.map { $0 ? 5000 : 1e6 })
    }

    @Test("gemma3 without a sliding window: every layer global")
    func noWindow() throws {
        let (model, path) = try TinyModel.load(Self.gemma3Writer(window: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(model.config.layers.allSatisfy { $0.slidingWindow == nil })
    }

    @Test("a bad sliding_window_pattern is an error naming the key")
    func badPattern() throws {
        let writer = try Self.gemma3Writer { w in w.set("gemma3.attention.sliding_window_pattern", .array([.bool(true)])) }
        #expect { try TinyModel.load(writer) } throws: { "\($0)".contains("gemma3.attention.sliding_window_pattern") }
    }

    /// Logits of every position of `tokens`, fed in pieces of `chunk` tokens into `cache`.
    static func logits(_ t: Transformer, _ tokens: [Int32], chunk: Int, cache: KVCache) throws -> [Float] {
        var rows: [Float] = []
        for start in stride(from: 0, to: tokens.count, by: chunk) {
            let piece = Array(tokens[start..<min(start + chunk, tokens.count)])
            rows += try t.forward(Batch(tokens: piece, startPosition: start, allLogits: true), cache: cache)
        }
        return rows
    }

    @Test("window buffers that move give the logits of a cache holding every position",
          arguments: [1, 7, 300])
    func windowBufferEqualsFullCache(chunk: Int) throws {
        let (model, path) = try TinyModel.load(Self.gemma3Writer(layers: 2))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = Transformer(model: model, pool: ComputePool())
        var rng = TestRandom(seed: 3)
        let tokens = (0..<300).map { _ in Int32(rng.next() % 128) }
        // Reference: the same windowed attention over a cache built without windows, which keeps
        // every position where it was written. Window 4 gives buffers of 4 + 64 positions, so 300
        // positions move them several times (inside one batch too when chunk = 300).
        var unwindowed = model.config
        for l in unwindowed.layers.indices { unwindowed.layers[l].slidingWindow = nil }
        let full = try KVCache(config: unwindowed, contextLength: 300, type: .f32)
        let reference = try Self.logits(t, tokens, chunk: 300, cache: full)
        let windowed = try KVCache(config: model.config, contextLength: 300, type: .f32)
        #expect(windowed.byteCount < full.byteCount)
        let ours = try Self.logits(t, tokens, chunk: chunk, cache: windowed)
        #expect(ours.maxAbsDifference(reference) < 1e-4)
    }

    @Test("rewinding past what a window buffer holds is an error, not stale attention")
    func rewindPastWindow() throws {
        let (model, path) = try TinyModel.load(Self.gemma3Writer(layers: 1))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = Transformer(model: model, pool: ComputePool())
        let cache = try KVCache(config: model.config, contextLength: 300, type: .f32)
        _ = try t.forward(Batch(tokens: Array(repeating: 5, count: 200), startPosition: 0), cache: cache)
        // Position 10 attends back to 7, long moved out of a 68-position buffer.
        #expect(throws: HARPError.self) { try t.forward(Batch(tokens: [1], startPosition: 10), cache: cache) }
        // Within the buffer, and from position 0, feeding again is fine.
        _ = try t.forward(Batch(tokens: [1], startPosition: 197), cache: cache)
        _ = try t.forward(Batch(tokens: [1, 2], startPosition: 0), cache: cache)
    }
}
