import Testing
@testable import HARP

/// Streaming detokenization never splits a UTF-8 character.
struct TokenizerTextStreamTests {
    /// Byte tokens only (ids 0...255 are the bytes), plus a control token 256.
    static let tokenizer: BPETokenizer = {
        let tokens = ByteLevelEncoding.scalarForByte.map { String($0) } + ["<|end|>"]
        let types = Array(repeating: TokenType.normal.rawValue, count: 256) + [TokenType.control.rawValue]
        // The vocabulary is valid by construction.
        return try! BPETokenizer(tokens: tokens, tokenTypes: types, merges: [], preTokenizer: .gpt2)
    }()

    /// Token `i` is byte `i`.
    static func byteIDs(_ text: String) -> [Int32] { text.utf8.map { Int32($0) } }

    @Test func multiByteCharactersWaitForTheirLastByte() {
        var stream = TokenTextStream(tokenizer: Self.tokenizer)
        let chunks = Self.byteIDs("a🙂b").map { stream.append($0) }
        #expect(chunks == ["a", "", "", "", "🙂", "b"])
        #expect(stream.finish() == "")
    }

    @Test func everyChunkIsWholeCharacters() {
        let text = "naïve 日本語 🙂👩‍👩‍👧 Ω"
        var stream = TokenTextStream(tokenizer: Self.tokenizer)
        var joined = ""
        for id in Self.byteIDs(text) {
            let chunk = stream.append(id)
            #expect(!chunk.contains("\u{FFFD}"))
            joined += chunk
        }
        #expect(joined + stream.finish() == text)
    }

    @Test func invalidBytesBecomeReplacementCharacters() {
        var stream = TokenTextStream(tokenizer: Self.tokenizer)
        // 0xFF can never start a character: replaced at once.
        #expect(stream.append(Self.byteIDs("x")[0]) == "x")
        #expect(stream.append(0xFF) == "\u{FFFD}")
        // 0xE6 0x97 starts 日 but "z" interrupts it.
        #expect(stream.append(0xE6) == "")
        #expect(stream.append(0x97) == "")
        #expect(stream.append(Self.byteIDs("z")[0]) == "\u{FFFD}z")
        // An unfinished character at the end is flushed as U+FFFD.
        #expect(stream.append(0xF0) == "")
        #expect(stream.finish() == "\u{FFFD}")
    }

    @Test func controlTokensRenderOnlyWhenAsked() {
        var hidden = TokenTextStream(tokenizer: Self.tokenizer)
        #expect(hidden.append(256) == "")
        var shown = TokenTextStream(tokenizer: Self.tokenizer, renderSpecial: true)
        #expect(shown.append(256) == "<|end|>")
    }
}
