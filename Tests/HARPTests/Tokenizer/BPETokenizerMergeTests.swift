import Testing
@testable import HARP

/// BPE merge order on tiny hand-made vocabularies.
struct BPETokenizerMergeTests {
    /// A vocabulary holding every byte's GPT-2 character (ids 0...255) plus `extra` tokens.
    static func tokenizer(extra: [String], merges: [String], preTokenizer: PreTokenizer = .gpt2) throws -> BPETokenizer {
        let bytes = ByteLevelEncoding.scalarForByte.map { String($0) }
        return try BPETokenizer(tokens: bytes + extra, tokenTypes: [], merges: merges, preTokenizer: preTokenizer)
    }

    static func id(of text: String, in tokenizer: BPETokenizer) -> Int32 {
        tokenizer.tokenID(forText: text) ?? -1
    }

    @Test func lowestRankMergesFirst() throws {
        // "abc": "b c" outranks "a b", so the result is a + bc, not ab + c.
        let tokenizer = try Self.tokenizer(extra: ["ab", "bc"], merges: ["b c", "a b"])
        #expect(tokenizer.encode("abc", parseSpecial: false) == [Self.id(of: "a", in: tokenizer), Self.id(of: "bc", in: tokenizer)])
    }

    @Test func tiesGoToTheLeftmostPair() throws {
        // "aaa" with only "a a": the left pair merges, leaving aa + a.
        let tokenizer = try Self.tokenizer(extra: ["aa"], merges: ["a a"])
        #expect(tokenizer.encode("aaa", parseSpecial: false) == [Self.id(of: "aa", in: tokenizer), Self.id(of: "a", in: tokenizer)])
        #expect(tokenizer.encode("aaaa", parseSpecial: false) == [Self.id(of: "aa", in: tokenizer), Self.id(of: "aa", in: tokenizer)])
    }

    @Test func mergesBuildOnEarlierMerges() throws {
        let tokenizer = try Self.tokenizer(
            extra: ["Ġl", "ow", "Ġlow", "er", "Ġlower"], merges: ["o w", "Ġ l", "e r", "Ġl ow", "Ġlow er"])
        #expect(tokenizer.encode(" lower lowest", parseSpecial: false) == [
            Self.id(of: "Ġlower", in: tokenizer), Self.id(of: "Ġlow", in: tokenizer),
            Self.id(of: "e", in: tokenizer), Self.id(of: "s", in: tokenizer), Self.id(of: "t", in: tokenizer),
        ])
    }

    @Test func stalePairsAreSkipped() throws {
        // "abcd": "b c" merges first, which invalidates the queued "a b" and "c d" pairs.
        let tokenizer = try Self.tokenizer(extra: ["bc", "ab", "cd", "abcd"], merges: ["b c", "a b", "c d", "a bcd"])
        #expect(tokenizer.encode("abcd", parseSpecial: false) == [
            Self.id(of: "a", in: tokenizer), Self.id(of: "bc", in: tokenizer), Self.id(of: "d", in: tokenizer),
        ])
    }

    @Test func wordsDoNotMergeAcrossPreTokenizerPieces() throws {
        let tokenizer = try Self.tokenizer(extra: ["aĠ"], merges: ["a Ġ"])
        #expect(tokenizer.encode("a a", parseSpecial: false).count == 3)
    }

    @Test func mergeResultsMissingFromTheVocabularyFallBackToBytes() throws {
        // "x y" is ranked but "xy" is no token: llama.cpp emits the single-byte tokens.
        let tokenizer = try Self.tokenizer(extra: [], merges: ["x y"])
        #expect(tokenizer.encode("xy", parseSpecial: false) == [Self.id(of: "x", in: tokenizer), Self.id(of: "y", in: tokenizer)])
    }

    @Test func llama3IgnoresMergesForWholeWords() throws {
        // "abc" is a token but no merges lead to it: llama3 uses it directly, gpt2 does not.
        let gpt2 = try Self.tokenizer(extra: ["abc"], merges: [])
        let llama3 = try Self.tokenizer(extra: ["abc"], merges: [], preTokenizer: .llama3)
        #expect(gpt2.encode("abc", parseSpecial: false).count == 3)
        #expect(llama3.encode("abc", parseSpecial: false) == [Self.id(of: "abc", in: llama3)])
    }

    @Test func specialTokensSplitLongestFirst() throws {
        let bytes = ByteLevelEncoding.scalarForByte.map { String($0) }
        let tokens = bytes + ["<s>", "<s><s>", "<u>"]
        let types = Array(repeating: TokenType.normal.rawValue, count: 256)
            + [TokenType.control.rawValue, TokenType.control.rawValue, TokenType.userDefined.rawValue]
        let tokenizer = try BPETokenizer(tokens: tokens, tokenTypes: types, merges: [], preTokenizer: .gpt2)
        #expect(tokenizer.encode("<s><s><s>", parseSpecial: true) == [257, 256])
        #expect(tokenizer.encode("a<u>", parseSpecial: false) == [Self.id(of: "a", in: tokenizer), 258])
        #expect(tokenizer.encode("<s>", parseSpecial: false).count == 3)
    }

    @Test func mismatchedTokenTypesAreRejected() {
        #expect(throws: HARPError.self) {
            try BPETokenizer(tokens: ["a", "b"], tokenTypes: [1], merges: [], preTokenizer: .gpt2)
        }
    }
}
