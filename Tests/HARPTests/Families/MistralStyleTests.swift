import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// Mistral-style models: the Llama graph with a SentencePiece vocabulary, on a tiny random-weight
/// model whose file carries the tiny vocabulary of `SentencePieceTests`.
@Suite("Mistral-style: llama graph, SentencePiece vocabulary")
struct MistralStyleTests {
    @Test("the file's tokenizer is SentencePiece; a prompt with BOS runs and batched equals one by one")
    func llamaWithSentencePiece() throws {
        let vocabulary = SentencePieceTests.tinyMetadata()
        let tokenCount = try #require(vocabulary["tokenizer.ggml.tokens"]?.arrayValue?.count)
        var writer = try TinyModel.writer(TinyModelSpec(vocab: tokenCount))
        for (key, value) in vocabulary { writer.set(key, value) }
        let (model, path) = try TinyModel.load(writer)
        defer { try? FileManager.default.removeItem(atPath: path) }

        let tokenizer = try TokenizerLoader.load(from: model.file)
        #expect(tokenizer is SentencePieceTokenizer && tokenizer.vocabularySize == model.config.vocabularySize)
        let bos = try #require(tokenizer.bosID)
        let prompt = [bos] + tokenizer.encode("abc cab é", parseSpecial: false)

        let t = Transformer(model: model, pool: ComputePool())
        let batched = try t.forward(Batch(tokens: prompt, startPosition: 0, allLogits: true),
                                    cache: KVCache(config: model.config, contextLength: 32, type: .f32))
        let session = try Session(transformer: t, contextLength: 32, kvType: .f32)
        var oneByOne: [Float] = []
        for token in prompt { oneByOne += try session.feed([token]) }
        #expect(batched.maxAbsDifference(oneByOne) < 1e-4)
    }
}
