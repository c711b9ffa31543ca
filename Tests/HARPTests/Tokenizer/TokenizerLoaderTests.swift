import Testing
@testable import HARP

/// Reading `tokenizer.ggml.*` metadata.
struct TokenizerLoaderTests {
    /// A byte-only vocabulary plus `<|im_end|>`, as GGUF metadata.
    static func metadata(model: String = "gpt2", pre: String? = "smollm") -> [String: GGUFValue] {
        let tokens = ByteLevelEncoding.scalarForByte.map { String($0) } + ["ab", "<|im_end|>"]
        var metadata: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string(model),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(Array(repeating: .int32(1), count: 257) + [.int32(3)]),
            "tokenizer.ggml.merges": .array([.string("a b")]),
            "tokenizer.ggml.bos_token_id": .uint32(257),
            "tokenizer.ggml.eos_token_id": .uint32(99_999),  // out of range: ignored, as llama.cpp does
            "tokenizer.ggml.add_bos_token": .bool(true),
        ]
        if let pre { metadata["tokenizer.ggml.pre"] = .string(pre) }
        return metadata
    }

    @Test func readsVocabularyAndSpecialTokens() throws {
        let tokenizer = try TokenizerLoader.load(metadata: Self.metadata(), source: "test.gguf")
        #expect(tokenizer.vocabularySize == 258)
        #expect(tokenizer.addBOS)
        #expect(tokenizer.bosID == 257)
        #expect(tokenizer.eosID == nil)
        #expect(tokenizer.endOfGenerationIDs == [257])
        #expect(tokenizer.encode("ab", parseSpecial: false) == [256])
    }

    @Test func unusableVocabulariesNameTheProblem() {
        // A SentencePiece ('llama') vocabulary needs an unknown token; this byte-level test vocabulary has none.
        #expect(throws: HARPError.tokenizer(
            "test.gguf: SentencePiece vocabulary without a valid unknown token (tokenizer.ggml.unknown_token_id)")) {
            try TokenizerLoader.load(metadata: Self.metadata(model: "llama"), source: "test.gguf")
        }
        #expect(throws: HARPError.tokenizer("test.gguf: unsupported tokenizer.ggml.model 'rwkv'")) {
            try TokenizerLoader.load(metadata: Self.metadata(model: "rwkv"), source: "test.gguf")
        }
    }

    @Test func unknownPreTokenizerIsNamed() {
        #expect(throws: HARPError.tokenizer("test.gguf: unsupported pre-tokenizer type 'mystery' (tokenizer.ggml.pre)")) {
            try TokenizerLoader.load(metadata: Self.metadata(pre: "mystery"), source: "test.gguf")
        }
    }
}
