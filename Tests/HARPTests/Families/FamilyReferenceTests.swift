import Foundation
import Testing
import HARPTestSupport
@testable import HARP

/// Tier 3: Qwen2 and Gemma 3 models, weights as stored, against llama.cpp's outputs on the same
/// files (Benchmarks/references). The two runtimes round quantized activations differently, so
/// logits are compared within the model's tolerance and rankings and greedy paths up to near-ties.
@Suite("Model families vs llama.cpp", .serialized)
struct FamilyReferenceTests {
    static func load(_ family: FamilyModel) throws -> (Transformer, any Tokenizer, FamilyReference) {
        let model = try Model(path: family.modelPath)
        return (Transformer(model: model, pool: ComputePool()), try TokenizerLoader.load(from: model.file), try family.reference())
    }

    /// What llama.cpp's tokenizer gives with add_special: BOS in front when the model asks for it.
    static func tokenize(_ text: String, _ tokenizer: any Tokenizer, parseSpecial: Bool) -> [Int32] {
        let bos = tokenizer.addBOS ? tokenizer.bosID.map { [$0] } ?? [] : []
        return bos + tokenizer.encode(text, parseSpecial: parseSpecial)
    }

    @Test("tokenizer ids equal llama-tokenize's", arguments: FamilyModel.all)
    func tokenizerIDs(_ family: FamilyModel) throws {
        let model = try GGUFFile(path: family.modelPath)
        let tokenizer = try TokenizerLoader.load(from: model)
        for c in try family.reference().tokenizer.cases {
            #expect(Self.tokenize(c.text, tokenizer, parseSpecial: true) == c.ids, "\(c.text.debugDescription)")
        }
    }

    @Test("top-10 next tokens and their logits agree with llama.cpp", arguments: FamilyModel.all)
    func top10(_ family: FamilyModel) throws {
        let (transformer, tokenizer, reference) = try Self.load(family)
        for c in reference.prompts.cases {
            let prompt = Self.tokenize(c.prompt, tokenizer, parseSpecial: false)
            #expect(prompt == c.promptIds)
            let cache = try KVCache(config: transformer.config, contextLength: 64, type: .f32)
            let logits = try transformer.forward(Batch(tokens: prompt, startPosition: 0), cache: cache)
            for entry in c.top10 {
                #expect(abs(logits[entry.id] - entry.logit) < family.logitTolerance,
                        "\(c.prompt.debugDescription): token \(entry.id) logit \(logits[entry.id]) vs \(entry.logit)")
            }
            // Ranks agree wherever llama.cpp's logits are further apart than the tolerance.
            let ours = Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(10))
            for (rank, entry) in c.top10.enumerated() {
                let separated = c.top10.indices.allSatisfy { other in
                    other == rank || abs(c.top10[other].logit - entry.logit) > family.logitTolerance
                }
                if separated { #expect(ours[rank] == entry.id, "\(c.prompt.debugDescription): rank \(rank)") }
            }
        }
    }

    @Test("greedy continuations equal llama.cpp's up to the first near-tie", arguments: FamilyModel.all)
    func greedy(_ family: FamilyModel) throws {
        let (transformer, _, reference) = try Self.load(family)
        for c in reference.prompts.cases {
            let decisive = c.greedyTop1MinusTop2.firstIndex { $0 < family.decisionMargin } ?? c.greedyIds.count
            // F16 keys and values, as llama.cpp's reference run cached them: near-ties follow the cache type.
            let ours = try greedyTokens(transformer, prompt: c.promptIds, steps: decisive, contextLength: 64, kvType: .f16)
            #expect(ours == Array(c.greedyIds.prefix(decisive)), "\(c.prompt.debugDescription)")
        }
    }

    /// Chunks of the perplexity check: the model's first few by default (about half a minute per
    /// model), all 40 with HARP_FULL_REFERENCE=1 — compared with llama.cpp's running estimate after
    /// as many chunks of the same run.
    static func perplexityChunks(_ family: FamilyModel, _ figure: FamilyReference.PerplexityFigure) -> Int {
        ProcessInfo.processInfo.environment["HARP_FULL_REFERENCE"] == "1" ? figure.chunks : min(family.defaultChunks, figure.chunks)
    }

    @Test("WikiText-2 perplexity (windows of 512, llama.cpp's protocol) agrees with llama.cpp's", arguments: FamilyModel.all)
    func perplexity(_ family: FamilyModel) throws {
        let (transformer, tokenizer, reference) = try Self.load(family)
        var text = try String(contentsOfFile: Fixtures.wikiTestPath, encoding: .utf8)
        if text.hasSuffix("\n") { text.removeLast() }
        let bos = tokenizer.addBOS ? tokenizer.bosID : nil
        let tokens = Self.tokenize(text, tokenizer, parseSpecial: false)
        let figure = reference.perplexity
        let chunks = Self.perplexityChunks(family, figure)
        let expected = try #require(figure.runningPpl.count >= chunks ? figure.runningPpl[chunks - 1] : nil)
        let result = try Perplexity.evaluate(transformer, tokens: tokens, context: figure.context, maxChunks: chunks, bos: bos)
        print("\(family.name) WikiText-2 PPL (\(chunks)×\(figure.context)): \(result.perplexity) (llama.cpp \(expected))")
        #expect(abs(result.perplexity / expected - 1) < family.perplexityTolerance)
    }
}

/// The chat side of Qwen2.5-Instruct's tokenizer: its turn markers are single control tokens and
/// end generation as llama.cpp's EOG set does.
@Suite("Qwen2.5 chat tokens")
struct QwenChatTokenTests {
    @Test("<|im_start|> and <|im_end|> are control tokens; <|im_end|> and <|endoftext|> end generation")
    func turnMarkers() throws {
        let family = try #require(FamilyModel.all.first { $0.name == "Qwen2.5-Coder-0.5B" })
        let tokenizer = try TokenizerLoader.load(from: GGUFFile(path: family.modelPath))
        let imStart = try #require(tokenizer.tokenID(forText: "<|im_start|>"))
        let imEnd = try #require(tokenizer.tokenID(forText: "<|im_end|>"))
        let endOfText = try #require(tokenizer.tokenID(forText: "<|endoftext|>"))
        #expect(tokenizer.encode("<|im_start|>user\nHi<|im_end|>", parseSpecial: true).first == imStart)
        #expect(tokenizer.encode("<|im_start|>user\nHi<|im_end|>", parseSpecial: true).last == imEnd)
        #expect(tokenizer.eosID == imEnd && !tokenizer.addBOS)
        #expect(tokenizer.isEndOfGeneration(imEnd) && tokenizer.isEndOfGeneration(endOfText) && !tokenizer.isEndOfGeneration(imStart))
        #expect(tokenizer.isControl(imStart) && tokenizer.isControl(imEnd))
    }
}
