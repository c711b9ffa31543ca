/// A SentencePiece tokenizer (Gemma, Llama 2, Mistral) run by libsentencepiece, with llama.cpp's
/// behaviour around it: special tokens are cut out of the text first (control tokens only with
/// `parseSpecial`, user-defined ones always), and each stretch of ordinary text is encoded on its
/// own, with the model's space prefix.
public struct SentencePieceTokenizer: Tokenizer {
    public let vocabularySize: Int
    public let addBOS: Bool
    /// Declared special tokens, completed by llama.cpp's text-based detection.
    public let specialTokenIDs: SpecialTokenIDs
    public let endOfGenerationIDs: Set<Int32>

    public var bosID: Int32? { specialTokenIDs.bos }
    public var eosID: Int32? { specialTokenIDs.eos }

    private let processor: SentencePieceProcessor
    private let vocabulary: TokenVocabulary
    private let specialTokens: SpecialTokenMatcher

    /// Loads a SentencePiece `tokenizer.model` file. BOS is added by default, as SentencePiece
    /// models expect.
    public init(modelFile path: String, addBOS: Bool = true) throws {
        let processor = try SentencePieceProcessor(file: path)
        let count = Int32(processor.pieceCount)
        try self.init(processor: processor, types: (0..<count).map(processor.type), addBOS: addBOS,
                      specialTokenIDs: SpecialTokenIDs(bos: processor.bosID, eos: processor.eosID))
    }

    /// - Parameter types: the kind of every piece; authoritative over the processor's own view
    ///   (which cannot tell user-defined pieces from normal ones).
    init(processor: SentencePieceProcessor, types declaredTypes: [TokenType], addBOS: Bool,
         specialTokenIDs: SpecialTokenIDs) throws {
        let count = processor.pieceCount
        guard count > 0, declaredTypes.count == count else {
            throw HARPError.tokenizer("SentencePiece model has \(count) pieces and \(declaredTypes.count) token types")
        }
        let texts = (0..<Int32(count)).map(processor.piece)
        let idForText = TokenVocabulary.index(texts)
        let resolution = EndOfGenerationRules.resolve(
            declared: specialTokenIDs.restricted(toVocabularySize: count), idForText: idForText, types: declaredTypes)

        self.vocabularySize = count
        self.addBOS = addBOS
        self.specialTokenIDs = resolution.ids
        self.endOfGenerationIDs = resolution.endOfGeneration
        self.processor = processor
        self.vocabulary = TokenVocabulary(texts: texts, types: resolution.types, idForText: idForText, piece: Self.piece)
        self.specialTokens = SpecialTokenMatcher(texts: texts, types: resolution.types)
    }

    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        let utf8 = Array(text.utf8)
        var output: [Int32] = []
        for fragment in specialTokens.partition(utf8, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id): output.append(id)
            case .text(let range): output.append(contentsOf: processor.encode(utf8[range]))
            }
        }
        return output
    }

    public func tokenPiece(_ id: Int32) -> [UInt8] { vocabulary.piece(id) }

    public func tokenType(_ id: Int32) -> TokenType { vocabulary.type(id) }

    public func tokenID(forText text: String) -> Int32? { vocabulary.id(forText: text) }

    /// The bytes a piece stands for: "▁" is a space, "<0xAB>" byte pieces are that byte.
    private static func piece(_ text: String, _ type: TokenType) -> [UInt8] {
        switch type {
        case .normal:
            // By scalars: "▁" followed by a combining mark is one Character, which String replacement would skip.
            return Array(String(String.UnicodeScalarView(text.unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 })).utf8)
        case .byte:
            guard text.hasPrefix("<0x"), text.hasSuffix(">"), let byte = UInt8(text.dropFirst(3).dropLast(), radix: 16) else { return [] }
            return [byte]
        case .control, .unknown, .userDefined: return Array(text.utf8)
        case .undefined, .unused: return []
        }
    }
}
