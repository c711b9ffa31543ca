import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// The batched scorer against identities that must hold: sharing a prefix through a KV copy and
/// packing many items into one pass change nothing (the kernels compute each row bit-identically
/// whatever batch it is in), and greedy generation does not depend on how many sequences run at once.
@Suite("Evaluation scorer")
struct ScorerTests {
    /// log p(tokens[j] | tokens[..<j]) for j ≥ 1, from one plain forward pass of the whole sequence.
    private func plainLogProbs(_ transformer: Transformer, _ tokens: [Int32]) throws -> [Double] {
        let cache = try KVCache(config: transformer.config, contextLength: tokens.count)
        let logits = try transformer.forward(Batch(tokens: tokens, startPosition: 0, allLogits: true), cache: cache)
        let vocab = transformer.config.vocabularySize
        return logits.withUnsafeBufferPointer { l in
            (1..<tokens.count).map { j in
                let row = l.baseAddress! + (j - 1) * vocab
                return Double(row[Int(tokens[j])]) - RowStatistics(row, count: vocab).logSumExp
            }
        }
    }

    @Test("tiny model: shared-prefix batched scores equal a plain forward pass of each sequence")
    func prefixSharingIsExact() throws {
        let (model, path) = try TinyModel.load(TinyModel.writer(TinyModelSpec()))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let transformer = Transformer(model: model, pool: ComputePool(threads: 2))
        let groups = try [
            ScoringGroup(sequences: [[1, 2, 3, 4, 5], [1, 2, 3, 9], [1, 2, 7, 7, 7, 7]], scoreFrom: 3),
            ScoringGroup(sequences: [[8, 9], [8, 10, 11]], scoreFrom: 1),
            ScoringGroup(sequences: [[3, 4, 5, 6, 7, 8, 9, 10]], scoreFrom: 5),
        ]
        #expect(groups[0].sharedPrefix == 2)  // the common prefix [1, 2] is shorter than scoreFrom
        // Small passes (4 sequences) force the groups into separate passes; 64 packs them together.
        for sequences in [4, 64] {
            let scored = try LogLikelihoodScorer(transformer: transformer, maxSequences: sequences, tokenBudget: 16).score(groups)
            for (g, group) in groups.enumerated() {
                for (c, s) in group.sequences.enumerated() {
                    let plain = try plainLogProbs(transformer, s)
                    let batched = scored[g][c]
                    #expect(batched.first == group.sharedPrefix)
                    for (i, lp) in batched.logProbs.enumerated() {
                        #expect(abs(lp - plain[batched.first + i - 1]) < 1e-9, "group \(g) choice \(c) token \(batched.first + i)")
                    }
                }
            }
        }
        #expect(throws: HARPError.self) { try ScoringGroup(sequences: [[1, 2], [1, 2]], scoreFrom: 2) }
    }

    @Test("SmolLM2: HellaSwag items scored in one batch equal the same items one at a time")
    func smolLM2BatchedEqualsSingle() throws {
        let model = try Model(path: Fixtures.smolLM2Path)
        let tokenizer = try TokenizerLoader.load(from: model.file)
        let transformer = Transformer(model: model, pool: ComputePool(threads: 2))
        let items = Array(try EvalData.hellaSwag(path: Fixtures.packageRoot.appendingPathComponent("Benchmarks/data/eval/"
            + EvalTask.hellaswag.defaultPath).path).prefix(6))
        let batched = try MultipleChoice.decide(items, scorer: LogLikelihoodScorer(transformer: transformer, maxSequences: 64),
                                                tokenizer: tokenizer, rule: .hellaSwag)
        let single = LogLikelihoodScorer(transformer: transformer, maxSequences: 4)
        for (i, item) in items.enumerated() {
            let alone = try MultipleChoice.decide([item], scorer: single, tokenizer: tokenizer, rule: .hellaSwag)[0]
            #expect(alone == batched[i], "item \(i)")
        }
        // The scores are real: the items are not all ties.
        #expect(Set(batched.flatMap(\.logLikelihoods)).count == 24)
    }

    @Test("SmolLM2 KL: itself gives 0 and 100%; the whole-vocabulary base gives the full KL of F32 vs Q4_1, a top-64 base a lower bound")
    func smolLM2KL() throws {
        let quantized = try Model(path: Fixtures.smolLM2Path)
        let full = try Model(path: Fixtures.smolLM2Path, weights: .f32)
        let tokenizer = try TokenizerLoader.load(from: quantized.file)
        let q = Transformer(model: quantized, pool: ComputePool(threads: 2))
        let f = Transformer(model: full, pool: ComputePool(threads: 2))
        let text = String(try String(contentsOfFile: Fixtures.wikiTestPath, encoding: .utf8).prefix(20_000))
        let vocab = full.config.vocabularySize
        let base = try KLBase.compute(f, text: text, tokenizer: tokenizer, context: 256, maxChunks: 2, topK: vocab)
        let path = TinyModel.temporaryPath("kl-base")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try base.write(to: path)
        let reread = try KLBase(path: path)
        #expect(reread == base)

        let same = try KLDivergence.evaluate(f, base: reread)
        #expect(same.value("kld_mean") == 0 && same.value("same_top") == 1 && same.value("rms_dp") == 0)

        // The full KL over all 49,152 outcomes, from both models' logits.
        var fullKL: [Double] = []
        for window in base.windows {
            var batch = Batch(tokens: window, startPosition: 0)
            batch.logitRows = Array(base.first..<(base.context - 1))
            let lp = try f.forward(batch, cache: KVCache(config: full.config, contextLength: base.context))
            let lq = try q.forward(batch, cache: KVCache(config: quantized.config, contextLength: base.context))
            for r in batch.logitRows.indices {
                let (sp, sq) = lp.withUnsafeBufferPointer { p in lq.withUnsafeBufferPointer { q in
                    (RowStatistics(p.baseAddress! + r * vocab, count: vocab).logSumExp, RowStatistics(q.baseAddress! + r * vocab, count: vocab).logSumExp)
                } }
                var kl = 0.0
                for i in 0..<vocab {
                    let a = Double(lp[r * vocab + i]) - sp, b = Double(lq[r * vocab + i]) - sq
                    kl += exp(a) * (a - b)
                }
                fullKL.append(kl)
            }
        }
        let fullMean = fullKL.reduce(0, +) / Double(fullKL.count)
        #expect(fullMean > 0.0005)
        let stored = try #require(try KLDivergence.evaluate(q, base: reread).value("kld_mean"))
        #expect(abs(stored - fullMean) / fullMean < 1e-3, "whole-vocabulary KL \(stored) vs full \(fullMean)")
        // A top-64 base groups the rest of the vocabulary into one outcome: coarsening can only lose divergence.
        let compact = try KLBase.compute(f, text: text, tokenizer: tokenizer, context: 256, maxChunks: 2, topK: 64)
        let top64 = try #require(try KLDivergence.evaluate(q, base: compact).value("kld_mean"))
        #expect(top64 <= fullMean * 1.0001 && top64 < stored)
    }

    @Test("SmolLM2 NQ-open: greedy answers are the same with 1 and 4 concurrent sequences")
    func generationIsBatchIndependent() async throws {
        let model = try Model(path: Fixtures.smolLM2Path)
        let tokenizer = try TokenizerLoader.load(from: model.file)
        let all = try EvalData.nqOpen(path: Fixtures.packageRoot.appendingPathComponent("Benchmarks/data/eval/" + EvalTask.nqOpen.defaultPath).path)
        let shots = Array(all[..<5]), items = Array(all[5..<9])
        var replies: [[GenerationTasks.Output]] = []
        for parallel in [1, 4] {
            let engine = try Engine(transformer: Transformer(model: model, pool: ComputePool(threads: 2)), tokenizer: tokenizer,
                                    chatTemplate: ChatTemplate.load(from: model.file, tokenizer: tokenizer),
                                    configuration: EngineConfiguration(maxConcurrentSequences: parallel, contextLength: 512))
            replies.append(try await GenerationTasks.evaluate(GenerationTasks.nqOpen, shots: shots, items: items, engine: engine).1)
            engine.shutdown()
        }
        #expect(replies[0] == replies[1])
        #expect(replies[0].contains { !$0.text.trimmingCharacters(in: .whitespaces).isEmpty })
    }
}
