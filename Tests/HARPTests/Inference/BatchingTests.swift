import Foundation
import Testing
@testable import HARP
import HARPTestSupport

@Suite("Batched forward passes")
struct BatchingTests {
    @Test("a prompt in one batch equals the same tokens one at a time")
    func batchEqualsSequential() throws {
        let (model, path) = try TinyModel.load(TinyModel.writer(TinyModelSpec()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let transformer = Transformer(model: model, pool: ComputePool(threads: 2))
        let tokens: [Int32] = [5, 17, 99, 3, 64, 12, 7]
        let vocab = model.config.vocabularySize
        let batchCache = try KVCache(config: model.config, contextLength: 32, type: .f32)
        let all = try transformer.forward(Batch(tokens: tokens, startPosition: 0, allLogits: true), cache: batchCache)
        let stepCache = try KVCache(config: model.config, contextLength: 32, type: .f32)
        for (i, t) in tokens.enumerated() {
            let one = try transformer.forward(Batch(tokens: [t], startPosition: i), cache: stepCache)
            #expect(one.maxAbsDifference(Array(all[(i * vocab)..<((i + 1) * vocab)])) < 1e-4, "position \(i)")
        }
    }

    @Test("several sequences in one batch equal each run alone")
    func sequencesAreIndependent() throws {
        let (model, path) = try TinyModel.load(TinyModel.writer(TinyModelSpec()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let transformer = Transformer(model: model, pool: ComputePool(threads: 2))
        let prompts: [[Int32]] = [[1, 2, 3], [40, 41], [7, 8, 9, 10]]
        let vocab = model.config.vocabularySize
        var alone: [[Float]] = []
        for p in prompts {
            let cache = try KVCache(config: model.config, contextLength: 16, type: .f32)
            alone.append(try transformer.forward(Batch(tokens: p, startPosition: 0), cache: cache))
        }
        var batch = Batch()
        for (s, p) in prompts.enumerated() {
            for (i, t) in p.enumerated() { batch.append(token: t, position: i, sequence: s, wantLogits: i == p.count - 1) }
        }
        let cache = try KVCache(config: model.config, sequences: prompts.count, contextLength: 16, type: .f32)
        let together = try transformer.forward(batch, cache: cache)
        for s in prompts.indices {
            #expect(Array(together[(s * vocab)..<((s + 1) * vocab)]).maxAbsDifference(alone[s]) < 1e-4, "sequence \(s)")
        }
    }

    @Test("out-of-range tokens and positions are rejected before any state changes")
    func invalidBatches() throws {
        let (model, path) = try TinyModel.load(TinyModel.writer(TinyModelSpec()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let transformer = Transformer(model: model, pool: ComputePool(threads: 1))
        let cache = try KVCache(config: model.config, contextLength: 8)
        #expect(throws: HARPError.self) { try transformer.forward(Batch(tokens: [500], startPosition: 0), cache: cache) }
        #expect(throws: HARPError.self) { try transformer.forward(Batch(tokens: [1, 2], startPosition: 7), cache: cache) }
        #expect(throws: HARPError.self) { try transformer.forward(Batch(), cache: cache) }
    }
}
