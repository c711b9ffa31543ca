import Foundation
import Testing
@testable import HARP

/// SmolLM2's tokenizer (gpt2 model, smollm pre-tokenizer) against ids produced by llama.cpp.
@Suite
struct SmolLMTokenizerTests {
    let tokenizer: any Tokenizer

    init() throws { tokenizer = try TokenizerFixtures.smolLM.get() }

    @Test func metadata() {
        #expect(tokenizer.vocabularySize == 49152)
        #expect(tokenizer.addBOS == false)
        #expect(tokenizer.bosID == 1)
        #expect(tokenizer.eosID == 2)
        #expect(tokenizer.endOfGenerationIDs == [0, 2])  // <|endoftext|>, <|im_end|>
        #expect(tokenizer.isControl(1) && tokenizer.isControl(16) && !tokenizer.isControl(17))
        #expect(tokenizer.tokenID(forText: "<|im_start|>") == 1)
    }

    @Test(arguments: try TokenizerFixtures.reference().tokenizer.cases)
    func referenceCase(_ reference: LlamaCppReference.TokenizerCase) {
        #expect(tokenizer.encode(reference.text, parseSpecial: reference.parse_special) == reference.ids,
                "\(reference.text.debugDescription) parseSpecial=\(reference.parse_special)")
    }

    @Test(arguments: try TokenizerFixtures.reference().next_token_f32)
    func referencePrompt(_ reference: LlamaCppReference.Prompt) {
        #expect(tokenizer.encode(reference.prompt, parseSpecial: false) == reference.prompt_ids)
    }

    @Test
    func wikiTextMatchesLlamaCpp() throws {
        var text = try String(contentsOfFile: TokenizerFixtures.wikiTestPath, encoding: .utf8)
        if text.hasSuffix("\n") { text.removeLast() }
        let clock = ContinuousClock()
        var ids: [Int32] = []
        let elapsed = clock.measure { ids = tokenizer.encode(text, parseSpecial: false) }
        print("tokenized wiki.test.raw (\(text.utf8.count) bytes) in \(elapsed)")
        #expect(Array(ids.prefix(16)) == (try TokenizerFixtures.reference().perplexity.first_16_ids))
        #expect(ids.count == 303415)
        #expect(tokenizer.decode(ids) == text)
    }

    @Test(arguments: [
        "Hello, world!", "naïve café — 日本語 テスト 🙂", "  multiple   spaces\n\nand\ttabs\r\n",
        "emoji 👩‍👩‍👧‍👦 flags 🇫🇷 ZWJ, combining e\u{301} and Ω≈ç√∫", "Ελληνικά, русский, עברית, العربية, हिन्दी",
        "code: for (int i = 0; i < 10; ++i) { x += a[i]; }", "numbers ١٢٣ ½ ² Ⅻ 1,234.5e-6", "it's I'M they'll WE'VE",
        "\u{00A0}nbsp\u{2003}em\u{3000}ideographic\u{0085}nel", "",
    ])
    func roundTrip(_ text: String) {
        #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: false)) == text)
    }

    @Test func specialTokensNeedParseSpecial() {
        let text = "<|im_start|>user"
        #expect(tokenizer.encode(text, parseSpecial: true).first == 1)
        #expect(!tokenizer.encode(text, parseSpecial: false).contains(1))
        #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: true)) == "user")
        #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: true), renderSpecial: true) == text)
    }
}
