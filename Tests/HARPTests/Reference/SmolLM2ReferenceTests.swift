import Foundation
import Testing
import HARPTestSupport
@testable import HARP

/// Tier 3: SmolLM2-135M against outputs measured with llama.cpp (../shared/reference).
@Suite("SmolLM2 vs llama.cpp",
       .serialized)
struct SmolLM2ReferenceTests {
    struct Case {
        var prompt: [Int32]
        var top10: [(id: Int, logit: Float)]
        var greedy: [Int32]
        var margins: [Double]
    }

    static func cases(_ section: String) throws -> [Case] {
        try cases(Fixtures.smolLM2Reference(), section)
    }

    /// The prompts of one section of a llama-probe.c reference (prompt ids, top-10, greedy, margins).
    static func cases(_ json: [String: Any], _ section: String) throws -> [Case] {
        let entries = try #require(json[section] as? [[String: Any]])
        return try entries.map { e in
            let top = try #require(e["top10"] as? [[String: Any]])
            return Case(prompt: try #require(e["prompt_ids"] as? [Int]).map(Int32.init),
                        top10: try top.map { (try #require($0["id"] as? Int), Float(try #require($0["logit"] as? Double))) },
                        greedy: try #require(e["greedy_ids"] as? [Int]).map(Int32.init),
                        margins: try #require(e["greedy_top1_minus_top2"] as? [Double]))
        }
    }

    func transformer(_ format: WeightFormat) throws -> Transformer {
        Transformer(model: try Model(path: Fixtures.smolLM2Path, weights: format), pool: ComputePool())
    }

    /// The k largest logits, largest first.
    func top(_ logits: [Float], _ k: Int) -> [Int] {
        Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(k))
    }

    @Test("F32: top-10 next-token ids equal and logits within 1e-2")
    func top10F32() throws {
        let t = try transformer(.f32)
        for c in try Self.cases("next_token_f32") {
            let cache = try KVCache(config: t.config, contextLength: 64, type: .f32)
            let logits = try t.forward(Batch(tokens: c.prompt, startPosition: 0), cache: cache)
            #expect(top(logits, 10) == c.top10.map(\.id))
            for (id, logit) in c.top10 {
                #expect(abs(logits[id] - logit) < 1e-2, "token \(id): \(logits[id]) vs \(logit)")
            }
        }
    }

    @Test("F32: greedy continuations equal llama.cpp's up to the first near-tie")
    func greedyF32() throws {
        let t = try transformer(.f32)
        for c in try Self.cases("next_token_f32") {
            let decisive = c.margins.firstIndex { $0 < 0.05 } ?? c.greedy.count
            let ours = try greedyTokens(t, prompt: c.prompt, steps: decisive)
            #expect(ours == Array(c.greedy.prefix(decisive)))
        }
    }

    @Test("Q4_1 as stored: top-1 and greedy agree with llama.cpp's quantized run")
    func greedyQ4_1() throws {
        let t = try transformer(.native)
        for c in try Self.cases("next_token_q4_1_llamacpp_q8_activations") {
            let decisive = c.margins.firstIndex { $0 < 0.1 } ?? c.greedy.count
            let ours = try greedyTokens(t, prompt: c.prompt, steps: decisive)
            #expect(ours == Array(c.greedy.prefix(decisive)))
        }
    }

    @Test("F32 WikiText-2 perplexity, 40 chunks of 512, within 0.3% of llama.cpp's 23.5115")
    func perplexityF32() throws {
        let t = try transformer(.f32)
        let tokenizer = try TokenizerLoader.load(from: t.model.file)
        var text = try String(contentsOfFile: Fixtures.wikiTestPath, encoding: .utf8)
        if text.hasSuffix("\n") { text.removeLast() }
        let tokens = tokenizer.encode(text, parseSpecial: false)
        #expect(tokens.count == 303_415)
        let result = try Perplexity.evaluate(t, tokens: tokens, context: 512, maxChunks: 40)
        print("SmolLM2 F32 WikiText-2 PPL (40×512): \(result.perplexity) ± \(result.uncertainty)")
        #expect(abs(result.perplexity / 23.5115 - 1) < 0.003)
        #expect(result.scoredTokens == 40 * 255)
    }
}
