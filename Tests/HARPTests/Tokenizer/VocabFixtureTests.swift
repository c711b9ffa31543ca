import Foundation
import Testing
@testable import HARP

/// One of llama.cpp's vocabulary-only test models (`models/vocab/ggml-vocab-NAME.gguf`, fetched by
/// `tools/fetch-models.sh vocab` from the llama-cpp-python 0.3.36 source package) with its test
/// vectors: `.gguf.inp` holds the texts, each followed by a `__ggml_vocab_test__` line; `.gguf.out`
/// one line of space-separated ids per text. llama.cpp's `convert_hf_to_gguf_update.py` wrote the
/// ids with the Hugging Face tokenizer (`encode(text, add_special_tokens=False)`), and
/// `test-tokenizer-0` checks llama.cpp against them with `add_special = false, parse_special = false`:
/// no BOS, control-token texts taken literally — what `encode(_, parseSpecial: false)` promises.
struct VocabFixture: CustomTestStringConvertible, Sendable {
    var name: String
    var testDescription: String { name }

    /// The fixtures our tokenizers reproduce exactly. The others llama.cpp ships are listed, with
    /// the reason, in the README ("Tokenizers").
    static let claimed: [VocabFixture] = [
        "llama-bpe", "llama-spm", "qwen2", "phi-3", "gpt-2", "mpt", "starcoder", "refact", "command-r",
    ].map { VocabFixture(name: $0) }

    static let directory = TokenizerFixtures.packageRoot.appendingPathComponent("models/vocab")

    var modelPath: String { Self.directory.appendingPathComponent("ggml-vocab-\(name).gguf").path }

    /// The (text, ids) cases, read as llama.cpp's `test-tokenizer-0` reads them. A missing or
    /// malformed file throws: the test fails rather than finding nothing to check.
    func cases() throws -> [(text: String, ids: [Int32])] {
        let input = try Data(contentsOf: URL(fileURLWithPath: modelPath + ".inp"))
        let output = try String(contentsOfFile: modelPath + ".out", encoding: .utf8)
        // Split on bytes: Swift's String treats "\r\n" as one character, which would hide separators.
        let texts = Self.split([UInt8](input), separator: Array("\n__ggml_vocab_test__\n".utf8))
            .map { String(decoding: $0, as: UTF8.self) }
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard texts.count == lines.count, !texts.isEmpty else {
            throw HARPError.invalidArgument("\(modelPath): \(texts.count) texts in .inp but \(lines.count) lines in .out")
        }
        return try zip(texts, lines).map { text, line in
            let ids = try line.split(separator: " ").map { field -> Int32 in
                guard let id = Int32(field) else { throw HARPError.invalidArgument("\(modelPath).out: '\(field)' is not a token id") }
                return id
            }
            return (text, ids)
        }
    }

    /// `test-tokenizer-0`'s reading: the pieces between separators; the text after the last one (if any) is a case too.
    static func split(_ bytes: [UInt8], separator: [UInt8]) -> [[UInt8]] {
        var pieces: [[UInt8]] = []
        var start = 0, i = 0
        while i + separator.count <= bytes.count {
            if bytes[i..<(i + separator.count)].elementsEqual(separator) {
                pieces.append(Array(bytes[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        if start < bytes.count { pieces.append(Array(bytes[start...])) }
        return pieces
    }
}

@Suite("llama.cpp tokenizer test vectors (models/vocab)")
struct VocabFixtureTests {
    @Test("every .inp case tokenizes to the .out ids (no BOS, no special-token parsing)", arguments: VocabFixture.claimed)
    func fixture(_ fixture: VocabFixture) throws {
        let tokenizer = try TokenizerLoader.load(from: GGUFFile(path: fixture.modelPath))
        let cases = try fixture.cases()
        #expect(cases.count >= 40, "\(fixture.modelPath).inp holds only \(cases.count) cases")
        for c in cases {
            let ours = tokenizer.encode(c.text, parseSpecial: false)
            #expect(ours == c.ids, "\(fixture.name): \(c.text.debugDescription)")
        }
    }

    @Test("the fixture reader splits as test-tokenizer-0 does")
    func splitting() {
        let sep = Array("\n__ggml_vocab_test__\n".utf8)
        let text = Array("a\r\n\n__ggml_vocab_test__\n\n__ggml_vocab_test__\n b\n__ggml_vocab_test__\n".utf8)
        #expect(VocabFixture.split(text, separator: sep).map { String(decoding: $0, as: UTF8.self) } == ["a\r\n", "", " b"])
    }
}
