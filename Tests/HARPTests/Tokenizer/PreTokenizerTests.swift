import Testing
@testable import HARP

/// Word splitting of each llama.cpp pre-tokenizer regex.
struct PreTokenizerTests {
    static func words(_ text: String, _ preTokenizer: PreTokenizer) -> [String] {
        let scalars = ScalarText(text)
        let utf8 = Array(text.utf8)
        return preTokenizer.split(scalars).map { String(decoding: utf8[scalars.byteRange(of: $0)], as: UTF8.self) }
    }

    @Test func gpt2() {
        #expect(Self.words("Hello, world!  It's 2024\n\nok", .gpt2)
                == ["Hello", ",", " world", "!", " ", " It", "'s", " 2024", "\n", "\n", "ok"])
        #expect(Self.words("a\tb   ", .gpt2) == ["a", "\t", "b", "   "])
        #expect(Self.words("café 日本語🙂!", .gpt2) == ["café", " 日本語", "🙂!"])
    }

    @Test func smolLMSplitsEveryDigit() {
        #expect(Self.words("x 1234 3.14", .gpt2SingleDigits) == ["x", " ", "1", "2", "3", "4", " ", "3", ".", "1", "4"])
    }

    @Test func llama3() {
        #expect(Self.words("I'M 1234567 ok!!\n\n  \n x", .llama3)
                == ["I", "'M", " ", "123", "456", "7", " ok", "!!\n\n", "  \n", " x"])
        #expect(Self.words("\tfoo  bar", .llama3) == ["\tfoo", " ", " bar"])
    }

    @Test func qwen2SplitsEveryDigit() {
        #expect(Self.words("v12 (x)\r\n", .qwen2) == ["v", "1", "2", " (", "x", ")\r\n"])
    }

    @Test func llamaCppDefault() {
        #expect(Self.words("a+b 12345", .llamaCppDefault) == ["a", "+", "b", " ", "123", "45"])
    }

    @Test func namesFollowLlamaCpp() throws {
        #expect(try PreTokenizer(ggmlName: "smollm") == .gpt2SingleDigits)
        #expect(try PreTokenizer(ggmlName: "qwen2") == .qwen2)
        #expect(try PreTokenizer(ggmlName: "llama-bpe") == .llama3)
        #expect(try PreTokenizer(ggmlName: nil) == .llamaCppDefault)
        #expect(throws: HARPError.tokenizer("unsupported pre-tokenizer type 'nope' (tokenizer.ggml.pre)")) {
            try PreTokenizer(ggmlName: "nope")
        }
    }
}
