import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// A tokenizer for the tiny random models: token `i` is the text "<i>", and `endOfGeneration` ends generation.
struct NumberedTokenizer: Tokenizer {
    var vocabularySize: Int
    var endOfGenerationIDs: Set<Int32> = []
    var addBOS: Bool { false }
    var bosID: Int32? { nil }
    var eosID: Int32? { nil }
    func encode(_ text: String, parseSpecial: Bool) -> [Int32] { text.unicodeScalars.map { Int32($0.value) % Int32(vocabularySize) } }
    func tokenPiece(_ id: Int32) -> [UInt8] { Array("<\(id)>".utf8) }
    func tokenType(_ id: Int32) -> TokenType { .normal }
    func tokenID(forText text: String) -> Int32? { nil }
}

/// The batched engine against the plain single-sequence path (`Session` + `Sampler`), which never
/// batches sequences together.
@Suite("Engine", .serialized)
struct EngineTests {
    /// Greedy (or seeded) generation of one prompt with Session: the reference.
    static func alone(_ transformer: Transformer, prompt: [Int32], maxTokens: Int, sampling: SamplingParameters,
                      endOfGeneration: Set<Int32>) throws -> [Int32] {
        let session = try Session(transformer: transformer, contextLength: prompt.count + maxTokens + 1)
        var sampler = Sampler(sampling)
        sampler.observe(prompt)
        var logits = try session.feed(prompt)
        var out: [Int32] = []
        while out.count < maxTokens {
            let token = sampler.sample(logits)
            if endOfGeneration.contains(token) { break }
            out.append(token)
            logits = try session.feed([token])
        }
        return out
    }

    /// Runs all requests at once and returns each one's token ids and summary.
    static func concurrently(_ engine: Engine, _ requests: [GenerationRequest]) async throws -> [([Int32], GenerationSummary?)] {
        try await withThrowingTaskGroup(of: (Int, [Int32], GenerationSummary?).self) { group in
            for (i, request) in requests.enumerated() {
                group.addTask {
                    var ids: [Int32] = []
                    var summary: GenerationSummary?
                    for try await event in engine.generate(request) {
                        switch event {
                        case .token(let id, _): ids.append(id)
                        case .finished(let s): summary = s
                        }
                    }
                    return (i, ids, summary)
                }
            }
            var results = [([Int32], GenerationSummary?)](repeating: ([], nil), count: requests.count)
            for try await (i, ids, summary) in group { results[i] = (ids, summary) }
            return results
        }
    }

    static func tinyEngine(slots: Int, budget: Int, context: Int = 64) throws -> (Engine, Transformer, String) {
        var spec = TinyModelSpec()
        spec.type = .q8_0
        let (model, path) = try TinyModel.load(TinyModel.writer(spec))
        let tokenizer = NumberedTokenizer(vocabularySize: model.config.vocabularySize)
        let template = ChatTemplate.recognise(templateText: nil, tokenizer: tokenizer)
        let engine = try Engine(model: model, tokenizer: tokenizer, chatTemplate: template,
                                configuration: EngineConfiguration(maxConcurrentSequences: slots, contextLength: context,
                                                                   stepTokenBudget: budget, threads: 2))
        return (engine, Transformer(model: model, pool: ComputePool(threads: 2)), path)
    }

    static func prompt(_ n: Int, seed: Int) -> [Int32] { (0..<n).map { Int32((seed * 31 + $0 * 7 + $0 * $0) % 120) } }

    @Test("8 concurrent sequences (greedy and seeded), prompts prefilled in chunks beside decoding ones, equal each run alone")
    func concurrentEqualsAlone() async throws {
        let (engine, transformer, path) = try Self.tinyEngine(slots: 8, budget: 12)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var requests: [GenerationRequest] = []
        for i in 0..<8 {
            var sampling = SamplingParameters.greedy
            if i % 3 == 2 { sampling = SamplingParameters(); sampling.temperature = 1.2; sampling.seed = UInt64(i) }
            requests.append(GenerationRequest(prompt: .tokens(Self.prompt(3 + 4 * i, seed: i)), maxTokens: 10 + i, sampling: sampling))
        }
        let results = try await Self.concurrently(engine, requests)
        for (i, request) in requests.enumerated() {
            guard case .tokens(let prompt) = request.prompt else { continue }
            let expected = try Self.alone(transformer, prompt: prompt, maxTokens: request.maxTokens, sampling: request.sampling, endOfGeneration: [])
            #expect(results[i].0 == expected, "sequence \(i)")
            #expect(results[i].1?.finishReason == .maxTokens)
            #expect(results[i].1?.generatedTokens == request.maxTokens)
        }
    }

    @Test("more requests than sequence slots wait their turn and still match")
    func queueing() async throws {
        let (engine, transformer, path) = try Self.tinyEngine(slots: 2, budget: 32)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let requests = (0..<5).map { GenerationRequest(prompt: .tokens(Self.prompt(5 + $0, seed: 10 + $0)), maxTokens: 6, sampling: .greedy) }
        let results = try await Self.concurrently(engine, requests)
        for (i, request) in requests.enumerated() {
            guard case .tokens(let prompt) = request.prompt else { continue }
            #expect(results[i].0 == (try Self.alone(transformer, prompt: prompt, maxTokens: 6, sampling: .greedy, endOfGeneration: [])))
        }
    }

    @Test("a follow-up prompt that extends a finished one reuses its cached tokens and gives the same tokens as a fresh run")
    func prefixReuse() async throws {
        let (engine, transformer, path) = try Self.tinyEngine(slots: 2, budget: 32)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = Self.prompt(9, seed: 3)
        let firstRun = try await Self.concurrently(engine, [GenerationRequest(prompt: .tokens(first), maxTokens: 5, sampling: .greedy)])[0]
        let second = first + firstRun.0 + [17, 4, 99]
        let secondRun = try await Self.concurrently(engine, [GenerationRequest(prompt: .tokens(second), maxTokens: 5, sampling: .greedy)])[0]
        // The last generated token was never fed, so the cache holds the prompt and all but one reply token.
        #expect(secondRun.1?.reusedPromptTokens == first.count + firstRun.0.count - 1)
        #expect(secondRun.0 == (try Self.alone(transformer, prompt: second, maxTokens: 5, sampling: .greedy, endOfGeneration: [])))
    }

    @Test("end-of-generation and context-full endings")
    func endings() async throws {
        let (engine, transformer, path) = try Self.tinyEngine(slots: 1, budget: 32, context: 20)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let prompt = Self.prompt(8, seed: 5)
        let full = try await Self.concurrently(engine, [GenerationRequest(prompt: .tokens(prompt), maxTokens: 100, sampling: .greedy)])[0]
        #expect(full.1?.finishReason == .contextFull)
        #expect(full.0.count == 20 - prompt.count + 1, "every position is used, and the last token is delivered")
        #expect(full.0 == (try Self.alone(transformer, prompt: prompt, maxTokens: full.0.count, sampling: .greedy, endOfGeneration: [])))

        // With the third greedy token declared end-of-generation, generation stops before it.
        var tokenizer = NumberedTokenizer(vocabularySize: transformer.config.vocabularySize)
        tokenizer.endOfGenerationIDs = [full.0[2]]
        let stopping = try Engine(model: transformer.model, tokenizer: tokenizer,
                                  chatTemplate: ChatTemplate.recognise(templateText: nil, tokenizer: tokenizer),
                                  configuration: EngineConfiguration(maxConcurrentSequences: 1, contextLength: 20, stepTokenBudget: 32))
        let stopped = try await Self.concurrently(stopping, [GenerationRequest(prompt: .tokens(prompt), maxTokens: 100, sampling: .greedy)])[0]
        #expect(stopped.1?.finishReason == .endOfGeneration)
        #expect(stopped.0 == Array(full.0.prefix(while: { $0 != full.0[2] })))
    }

    @Test("cancelling the consuming task frees the sequence; the engine keeps serving")
    func cancellation() async throws {
        let (engine, _, path) = try Self.tinyEngine(slots: 1, budget: 32, context: 4096)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let consumer = Task {
            var count = 0
            for try await event in engine.generate(GenerationRequest(prompt: .tokens([1, 2, 3]), maxTokens: 4000, sampling: .greedy)) {
                if case .token = event { count += 1 }
            }
            return count
        }
        while engine.statistics.cachedTokensPerSlot[0] < 20 { try await Task.sleep(for: .milliseconds(2)) }
        consumer.cancel()
        let delivered = try await consumer.value
        #expect(delivered < 4000)
        var waited = 0
        while engine.statistics.activeSequences > 0 && waited < 2000 { try await Task.sleep(for: .milliseconds(1)); waited += 1 }
        #expect(engine.statistics.activeSequences == 0)
        let after = try await engine.complete(GenerationRequest(prompt: .tokens([5, 6]), maxTokens: 3, sampling: .greedy))
        #expect(after.summary.generatedTokens == 3)
    }

    @Test("bad requests end the stream with a typed error")
    func errors() async throws {
        let (engine, _, path) = try Self.tinyEngine(slots: 1, budget: 32, context: 16)
        defer { try? FileManager.default.removeItem(atPath: path) }
        await #expect(throws: GenerationError.promptTooLong(promptTokens: 16, contextLength: 16)) {
            _ = try await engine.complete(GenerationRequest(prompt: .tokens(Array(repeating: 1, count: 16))))
        }
        await #expect(throws: GenerationError.emptyPrompt) { _ = try await engine.complete(GenerationRequest(prompt: .tokens([]))) }
        await #expect(throws: GenerationError.invalidMaxTokens(0)) {
            _ = try await engine.complete(GenerationRequest(prompt: .tokens([1]), maxTokens: 0))
        }
        await #expect(throws: HARPError.self) { _ = try await engine.complete(GenerationRequest(prompt: .tokens([1000]))) }
        engine.shutdown()
        await #expect(throws: GenerationError.engineStopped) { _ = try await engine.complete(GenerationRequest(prompt: .tokens([1]))) }
    }

    /// Exact equality holds because the kernels compute each token's rows bit-identically whatever
    /// batch they come in (hk_matmul, hk_attention); whole prompts and the decode steps of all
    /// eight chats share forward passes here, on the default SIMD level.
    @Test("SmolLM2: 8 concurrent greedy chats give exactly the tokens of each chat alone")
    func smolLM2Concurrent() async throws {
        let model = try Model(path: Fixtures.smolLM2Path)
        let tokenizer = try TokenizerLoader.load(from: model.file)
        let engine = try Engine(transformer: Transformer(model: model, pool: ComputePool(threads: 2)), tokenizer: tokenizer,
                                chatTemplate: ChatTemplate.load(from: model.file, tokenizer: tokenizer),
                                configuration: EngineConfiguration(maxConcurrentSequences: 8, contextLength: 96))
        let questions = ["What is the capital of France?", "Name three colors.", "Write a haiku about rain.", "What is 12 times 7?",
                         "Say hello in Spanish.", "Why is the sky blue?", "List two planets.", "What do bees make?"]
        let maxTokens = 16
        let requests = questions.map { GenerationRequest(prompt: .chat([.system("Be brief."), .user($0)]), maxTokens: maxTokens, sampling: .greedy) }
        let results = try await Self.concurrently(engine, requests)
        let reference = Transformer(model: model, pool: ComputePool(threads: 2))
        for (i, request) in requests.enumerated() {
            let expected = try Self.alone(reference, prompt: try engine.promptTokens(request.prompt), maxTokens: maxTokens, sampling: .greedy,
                                          endOfGeneration: tokenizer.endOfGenerationIDs)
            #expect(results[i].0 == expected, "chat \(i): \(tokenizer.decode(results[i].0)) vs \(tokenizer.decode(expected))")
        }
    }
}
