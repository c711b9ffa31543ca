/// A byte-level BPE tokenizer (GGUF `tokenizer.ggml.model` = "gpt2": GPT-2, SmolLM, Qwen2, Llama 3,
/// ...) that reproduces llama.cpp's `llm_tokenizer_bpe`: special-token partition, regex
/// pre-tokenization, then rank-ordered merges over the bytes of each word.
public struct BPETokenizer: Tokenizer {
    public let vocabularySize: Int
    public let addBOS: Bool
    public let preTokenizer: PreTokenizer
    /// Declared special tokens, completed by llama.cpp's text-based detection.
    public let specialTokenIDs: SpecialTokenIDs
    public let endOfGenerationIDs: Set<Int32>

    public var bosID: Int32? { specialTokenIDs.bos }
    public var eosID: Int32? { specialTokenIDs.eos }

    private let vocabulary: TokenVocabulary
    private let mergeTable: BPEMergeTable
    private let specialTokens: SpecialTokenMatcher

    /// - Parameters:
    ///   - tokens: vocabulary entries in GPT-2 byte-to-character form.
    ///   - tokenTypes: `TokenType` codes, one per token; empty means all normal.
    ///   - merges: "left right" merge rules, highest priority first.
    ///   - addBOS: `tokenizer.ggml.add_bos_token`; `nil` takes the pre-tokenizer's default.
    ///   - specialTokenIDs: declared special tokens; ids outside the vocabulary are ignored.
    public init(
        tokens: [String], tokenTypes: [Int32], merges: [String], preTokenizer: PreTokenizer,
        addBOS: Bool? = nil, specialTokenIDs: SpecialTokenIDs = SpecialTokenIDs()
    ) throws {
        guard !tokens.isEmpty, tokens.count <= Int(Int32.max) else {
            throw HARPError.tokenizer("vocabulary has \(tokens.count) tokens")
        }
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw HARPError.tokenizer("\(tokens.count) tokens but \(tokenTypes.count) token types")
        }
        let idForText = TokenVocabulary.index(tokens)

        let declaredTypes = tokenTypes.isEmpty
            ? Array(repeating: TokenType.normal, count: tokens.count)
            : tokenTypes.map { TokenType(rawValue: $0) ?? .undefined }
        let resolution = EndOfGenerationRules.resolve(
            declared: specialTokenIDs.restricted(toVocabularySize: tokens.count),
            idForText: idForText, types: declaredTypes)

        self.vocabularySize = tokens.count
        self.addBOS = addBOS ?? preTokenizer.addsBOSByDefault
        self.preTokenizer = preTokenizer
        self.specialTokenIDs = resolution.ids
        self.endOfGenerationIDs = resolution.endOfGeneration
        self.vocabulary = TokenVocabulary(texts: tokens, types: resolution.types, idForText: idForText, piece: Self.piece)
        self.mergeTable = BPEMergeTable(idForText: idForText, vocabularySize: tokens.count, merges: merges)
        self.specialTokens = SpecialTokenMatcher(texts: tokens, types: resolution.types)
    }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        let utf8 = Array(text.utf8)
        var output: [Int32] = []
        output.reserveCapacity(utf8.count / 3)
        var merger = BPEWordMerger()
        for fragment in specialTokens.partition(utf8, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id): output.append(id)
            case .text(let range): encodeOrdinaryText(utf8[range], merger: &merger, into: &output)
            }
        }
        return output
    }

    public func tokenPiece(_ id: Int32) -> [UInt8] { vocabulary.piece(id) }

    public func tokenType(_ id: Int32) -> TokenType { vocabulary.type(id) }

    public func tokenID(forText text: String) -> Int32? { vocabulary.id(forText: text) }

    /// The stored (byte-to-character encoded) text of a token.
    public func tokenText(_ id: Int32) -> String? { vocabulary.text(id) }

    // MARK: - Encoding

    private func encodeOrdinaryText(_ bytes: ArraySlice<UInt8>, merger: inout BPEWordMerger, into output: inout [Int32]) {
        // Fragments start and end on character boundaries (special-token texts are valid UTF-8).
        let scalarText = ScalarText(String(decoding: bytes, as: UTF8.self))
        var symbols: [Int32] = []
        for word in preTokenizer.split(scalarText) {
            let byteRange = scalarText.byteRange(of: word)
            let wordBytes = bytes[(bytes.startIndex + byteRange.lowerBound)..<(bytes.startIndex + byteRange.upperBound)]
            if preTokenizer.ignoresMerges, let id = vocabulary.id(forText: ByteLevelEncoding.encode(wordBytes)) {
                output.append(id)
                continue
            }
            symbols.removeAll(keepingCapacity: true)
            merger.merge(wordBytes, table: mergeTable, into: &symbols)
            for symbol in symbols { appendSymbol(symbol, to: &output) }
        }
    }

    /// Emits a merged symbol. One that is not a vocabulary entry falls back, as in llama.cpp, to
    /// the single-byte entries of its text's bytes (only ASCII ones can exist).
    private func appendSymbol(_ symbol: Int32, to output: inout [Int32]) {
        guard Int(symbol) >= vocabularySize else {
            output.append(symbol)
            return
        }
        for byte in mergeTable.extraSymbolTexts[Int(symbol) - vocabularySize].utf8 where byte < 0x80 {
            if let id = vocabulary.id(forText: String(UnicodeScalar(byte))) { output.append(id) }
        }
    }

    // MARK: - Setup helpers

    /// What llama.cpp's `token_to_piece` renders with special = true.
    private static func piece(_ text: String, _ type: TokenType) -> [UInt8] {
        switch type {
        case .normal: return ByteLevelEncoding.decode(text)
        case .control, .unknown, .userDefined: return Array(text.utf8)
        case .undefined, .unused, .byte: return []
        }
    }
}
