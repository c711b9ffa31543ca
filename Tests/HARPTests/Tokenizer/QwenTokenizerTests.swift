import Testing
@testable import HARP

/// Qwen2.5's tokenizer (gpt2 model, qwen2 pre-tokenizer, user-defined tokens).
@Suite
struct QwenTokenizerTests {
    let tokenizer: any Tokenizer

    init() throws { tokenizer = try TokenizerFixtures.qwen.get() }

    @Test func metadata() {
        #expect(tokenizer.vocabularySize == 151936)
        #expect(tokenizer.addBOS == false)
        #expect(tokenizer.eosID == 151645)
        // <|endoftext|>, <|im_end|>, and the FIM pad / repo name / file separator tokens.
        #expect(tokenizer.endOfGenerationIDs == [151643, 151645, 151662, 151663, 151664])
    }

    @Test func digitsAreSingleTokens() {
        let ids = tokenizer.encode("12345", parseSpecial: false)
        #expect(ids.count == 5)
        #expect(tokenizer.decode(ids) == "12345")
    }

    @Test func userDefinedTokensAreAlwaysMatched() throws {
        let toolCall = try #require(tokenizer.tokenID(forText: "<tool_call>"))
        #expect(tokenizer.encode("a<tool_call>b", parseSpecial: false).contains(toolCall))
        let imStart = try #require(tokenizer.tokenID(forText: "<|im_start|>"))
        #expect(!tokenizer.encode("<|im_start|>", parseSpecial: false).contains(imStart))
        #expect(tokenizer.encode("<|im_start|>", parseSpecial: true) == [imStart])
    }

    @Test(arguments: [
        "def f(x):\n    return x ** 2\n\n\n", "naïve café — 日本語 テスト 🙂", "It's WE'LL 1234567 x\r\n\r\n  y",
    ])
    func roundTrip(_ text: String) {
        #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: false)) == text)
    }
}
