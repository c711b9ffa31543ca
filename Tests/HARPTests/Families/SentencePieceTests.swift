import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// SentencePiece vocabularies from GGUF metadata, tokenized by libsentencepiece: against an
/// independent transcription of llama.cpp's SPM algorithm, and on a tiny hand-made vocabulary.
@Suite("SentencePiece tokenizer")
struct SentencePieceTests {
    /// llama.cpp's SPM tokenization, written plainly: user-defined tokens are cut out of the text
    /// (longest first, each splitting every remaining stretch, as `tokenizer_st_partition`); in
    /// each stretch spaces become "▁" (with one in front when the model adds a space prefix), the
    /// text is cut into characters, the adjacent pair whose joined text is the best-scoring
    /// vocabulary entry is merged (leftmost on ties) until none is, and characters outside the
    /// vocabulary become their byte tokens (`llm_tokenizer_spm`).
    struct ReferenceSPM {
        /// Keyed by UTF-8 bytes: Swift's String equality would equate canonically equivalent texts.
        var scoreOfText: [[UInt8]: (id: Int32, score: Float)]
        var userDefined: [(text: String, id: Int32)]
        var addSpacePrefix: Bool

        init(metadata: [String: GGUFValue]) throws {
            let tokens = try #require(metadata["tokenizer.ggml.tokens"]?.stringArray)
            let scores = try #require(metadata["tokenizer.ggml.scores"]?.floatArray)
            let types = try #require(metadata["tokenizer.ggml.token_type"]?.intArray)
            var table: [[UInt8]: (Int32, Float)] = [:]
            for (id, text) in tokens.enumerated() where table[Array(text.utf8)] == nil { table[Array(text.utf8)] = (Int32(id), scores[id]) }
            scoreOfText = table
            userDefined = tokens.indices.filter { types[$0] == Int(TokenType.userDefined.rawValue) }
                .map { (tokens[$0], Int32($0)) }
                .sorted { $0.text.utf8.count > $1.text.utf8.count }
            addSpacePrefix = metadata["tokenizer.ggml.add_space_prefix"]?.boolValue ?? true
        }

        enum Fragment {
            case text([UInt8])
            case token(Int32)
        }

        func encode(_ text: String) -> [Int32] {
            var fragments: [Fragment] = text.isEmpty ? [] : [.text(Array(text.utf8))]
            for special in userDefined {
                let needle = Array(special.text.utf8)
                fragments = fragments.flatMap { fragment -> [Fragment] in
                    guard case .text(let bytes) = fragment else { return [fragment] }
                    var pieces: [Fragment] = []
                    var start = 0, i = 0
                    while i + needle.count <= bytes.count {
                        if Array(bytes[i..<(i + needle.count)]) == needle {
                            if i > start { pieces.append(.text(Array(bytes[start..<i]))) }
                            pieces.append(.token(special.id))
                            i += needle.count
                            start = i
                        } else {
                            i += 1
                        }
                    }
                    if start < bytes.count { pieces.append(.text(Array(bytes[start...]))) }
                    return pieces
                }
            }
            return fragments.flatMap { fragment -> [Int32] in
                switch fragment {
                case .token(let id): return [id]
                case .text(let bytes): return encodeText(bytes)
                }
            }
        }

        private func encodeText(_ utf8: [UInt8]) -> [Int32] {
            let text = String(decoding: (addSpacePrefix ? [0x20] : []) + utf8, as: UTF8.self)
            var symbols = text.unicodeScalars.map { Array(($0 == " " ? "\u{2581}" : String($0)).utf8) }
            while symbols.count > 1 {
                var best: (index: Int, score: Float)?
                for i in 0..<(symbols.count - 1) {
                    if let entry = scoreOfText[symbols[i] + symbols[i + 1]], best.map({ entry.score > $0.score }) ?? true {
                        best = (i, entry.score)
                    }
                }
                guard let merge = best else { break }
                symbols[merge.index] += symbols.remove(at: merge.index + 1)
            }
            return symbols.flatMap { symbol -> [Int32] in
                if let entry = scoreOfText[symbol] { return [entry.id] }
                return symbol.compactMap { scoreOfText[Array(String(format: "<0x%02X>", $0).utf8)]?.id }
            }
        }
    }

    static let gemmaPath = Fixtures.packageRoot.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf").path

    @Test("Gemma 3 vocabulary: ids equal llama.cpp's SPM algorithm on varied texts")
    func gemmaAgainstReferenceAlgorithm() throws {
        let file = try GGUFFile(path: Self.gemmaPath)
        let tokenizer = try TokenizerLoader.load(from: file)
        let reference = try ReferenceSPM(metadata: file.metadata)
        let pieces = ["the", " ", "  ", "Quick", "naïve", "café", "日本語", "の", "🦙", "🚀", "\n", "\t", "1234", "3.14",
                      "don't", "Ελληνικά", "—", "()", "x+y", "ẞ", "\u{0301}", "ab"]
        var rng = TestRandom(seed: 11)
        for _ in 0..<100 {
            let text = (0..<(1 + Int(rng.next() % 12))).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            #expect(tokenizer.encode(text, parseSpecial: false) == reference.encode(text), "\(text.debugDescription)")
            #expect(tokenizer.decode(tokenizer.encode(text, parseSpecial: false)) == text)
        }
    }

    /// A tiny vocabulary: control tokens, the unknown token, byte tokens for every byte, and a few
    /// pieces with scores that make merge order matter.
    static func tinyMetadata(addSpacePrefix: Bool = true, unknown: Bool = true) -> [String: GGUFValue] {
        var tokens = ["<unk>", "<s>", "</s>", "<start_of_turn>", "<mark>"]
        var types: [TokenType] = [unknown ? .unknown : .normal, .control, .control, .control, .userDefined]
        tokens += (0..<256).map { String(format: "<0x%02X>", $0) }
        types += Array(repeating: .byte, count: 256)
        let pieces = ["\u{2581}", "a", "b", "c", "ab", "bc", "\u{2581}a", "\u{2581}ab"]
        tokens += pieces
        types += Array(repeating: .normal, count: pieces.count)
        var scores = [Float](repeating: 0, count: tokens.count - pieces.count)
        scores += [-1, -2, -2, -2, -3, -1, -5, -6]  // "bc" outranks "ab"
        return [
            "tokenizer.ggml.model": .string("llama"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.scores": .array(scores.map { .float32($0) }),
            "tokenizer.ggml.token_type": .array(types.map { .int32($0.rawValue) }),
            "tokenizer.ggml.bos_token_id": .uint32(1),
            "tokenizer.ggml.eos_token_id": .uint32(2),
            "tokenizer.ggml.add_space_prefix": .bool(addSpacePrefix),
        ]
    }

    static func id(_ text: String, _ t: any Tokenizer) throws -> Int32 { try #require(t.tokenID(forText: text)) }

    @Test("merges by score, byte fallback, space prefix, special tokens")
    func tinyVocabulary() throws {
        let metadata = Self.tinyMetadata()
        let t = try TokenizerLoader.load(metadata: metadata, source: "tiny")
        let reference = try ReferenceSPM(metadata: metadata)
        for text in ["abc", "a bc", "abcabc", "cab", "é!", "a  b", ""] {
            #expect(t.encode(text, parseSpecial: false) == reference.encode(text), "\(text.debugDescription)")
        }
        // "bc" merges before "ab" would, so "▁ab" is never formed.
        #expect(t.encode("abc", parseSpecial: false) == [try Self.id("\u{2581}a", t), try Self.id("bc", t)])
        // "é" is not in the vocabulary: its two UTF-8 bytes.
        #expect(t.encode("é", parseSpecial: false).suffix(2) == [try Self.id("<0xC3>", t), try Self.id("<0xA9>", t)])
        #expect(t.decode(t.encode("é abc", parseSpecial: false)) == " é abc")
        // Control tokens only with parseSpecial; user-defined ones always; each text fragment gets the space prefix.
        let turn = try Self.id("<start_of_turn>", t), mark = try Self.id("<mark>", t)
        #expect(t.encode("<start_of_turn>a", parseSpecial: true) == [turn, try Self.id("\u{2581}a", t)])
        #expect(!t.encode("<start_of_turn>a", parseSpecial: false).contains(turn))
        #expect(t.encode("a<mark>a", parseSpecial: false) == [try Self.id("\u{2581}a", t), mark, try Self.id("\u{2581}a", t)])
        #expect(t.addBOS && t.bosID == 1 && t.eosID == 2)
        #expect(t.isEndOfGeneration(2))
    }

    @Test("without add_space_prefix no ▁ is put in front")
    func noSpacePrefix() throws {
        let t = try TokenizerLoader.load(metadata: Self.tinyMetadata(addSpacePrefix: false), source: "tiny")
        #expect(t.encode("ab", parseSpecial: false) == [try Self.id("ab", t)])
        #expect(t.encode(" ab", parseSpecial: false) == [try Self.id("\u{2581}ab", t)])
    }

    @Test("a vocabulary without an unknown token is an error naming the key")
    func missingUnknown() {
        #expect { try TokenizerLoader.load(metadata: Self.tinyMetadata(unknown: false), source: "tiny.gguf") } throws: {
            "\($0)".contains("tiny.gguf") && "\($0)".contains("unknown_token_id")
        }
    }

    @Test("a tokenizer.model file tokenizes as the same vocabulary built from GGUF metadata")
    func modelFile() throws {
        let metadata = Self.tinyMetadata()
        let fromMetadata = try TokenizerLoader.load(metadata: metadata, source: "tiny")
        let tokens = try #require(metadata["tokenizer.ggml.tokens"]?.stringArray)
        let scores = try #require(metadata["tokenizer.ggml.scores"]?.floatArray)
        let types = try #require(metadata["tokenizer.ggml.token_type"]?.intArray).compactMap { TokenType(rawValue: Int32($0)) }
        let proto = SentencePieceModelProto(pieces: tokens, scores: scores, types: types, unknownID: 0, addSpacePrefix: true)
        let path = TinyModel.temporaryPath("tokenizer-model")
        try Data(proto.serialized()).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try SentencePieceTokenizer(modelFile: path)
        #expect(fromFile.vocabularySize == fromMetadata.vocabularySize)
        for text in ["abc", "a bc é", "cab  b"] {
            #expect(fromFile.encode(text, parseSpecial: false) == fromMetadata.encode(text, parseSpecial: false))
        }
        #expect(fromFile.tokenType(0) == .unknown && fromFile.tokenType(5) == .byte)
    }

    @Test("a tokenizer.model file that is not a SentencePiece model is an error naming the file")
    func badModelFile() throws {
        let path = TinyModel.temporaryPath("not-a-model")
        try Data("not a protobuf".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try SentencePieceTokenizer(modelFile: path) } throws: { "\($0)".contains(path) }
    }
}
