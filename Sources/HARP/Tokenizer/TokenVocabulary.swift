/// The per-token tables every tokenizer keeps: each token's stored text, kind and the bytes it
/// stands for, and the reverse lookup from text to id.
struct TokenVocabulary: Sendable {
    let texts: [String]
    let types: [TokenType]
    let pieces: [[UInt8]]
    let idForText: [String: Int32]

    /// Text → id; where a text appears twice the last id wins, as in llama.cpp.
    static func index(_ texts: [String]) -> [String: Int32] {
        var idForText: [String: Int32] = [:]
        idForText.reserveCapacity(texts.count)
        for (id, text) in texts.enumerated() { idForText[text] = Int32(id) }
        return idForText
    }

    /// - Parameter piece: the bytes a token of this text and kind stands for (tokenizer-specific).
    init(texts: [String], types: [TokenType], idForText: [String: Int32], piece: (String, TokenType) -> [UInt8]) {
        self.texts = texts
        self.types = types
        self.pieces = zip(texts, types).map(piece)
        self.idForText = idForText
    }

    func piece(_ id: Int32) -> [UInt8] { pieces.indices.contains(Int(id)) ? pieces[Int(id)] : [] }
    func type(_ id: Int32) -> TokenType { types.indices.contains(Int(id)) ? types[Int(id)] : .undefined }
    func text(_ id: Int32) -> String? { texts.indices.contains(Int(id)) ? texts[Int(id)] : nil }
    func id(forText text: String) -> Int32? { idForText[text] }
}
