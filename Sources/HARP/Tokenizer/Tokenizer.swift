/// Turns text into token ids and token ids back into bytes, with llama.cpp's behaviour.
public protocol Tokenizer: Sendable {
    /// Number of entries in the vocabulary (valid ids are `0..<vocabularySize`).
    var vocabularySize: Int { get }
    /// Whether a prompt should start with `bosID` (`tokenizer.ggml.add_bos_token`). `encode` never adds it.
    var addBOS: Bool { get }
    var bosID: Int32? { get }
    var eosID: Int32? { get }
    /// Tokens that end generation: eos, eot, eom and the end-of-turn tokens llama.cpp recognises by text.
    var endOfGenerationIDs: Set<Int32> { get }

    /// Token ids of `text`, without BOS. With `parseSpecial`, texts of control tokens (such as
    /// `<|im_start|>`) become those tokens; user-defined tokens are always recognised.
    func encode(_ text: String, parseSpecial: Bool) -> [Int32]
    /// The bytes a token stands for: decoded bytes for normal tokens, the literal text for control,
    /// unknown and user-defined tokens, nothing for other kinds or ids out of range.
    func tokenPiece(_ id: Int32) -> [UInt8]
    /// The kind of a token (`.undefined` for ids out of range).
    func tokenType(_ id: Int32) -> TokenType
    /// The id of the vocabulary entry whose stored text is exactly `text`.
    func tokenID(forText text: String) -> Int32?
}

extension Tokenizer {
    public func isControl(_ id: Int32) -> Bool { tokenType(id) == .control }

    public func isEndOfGeneration(_ id: Int32) -> Bool { endOfGenerationIDs.contains(id) }

    /// The text of a whole token sequence; incomplete or invalid UTF-8 becomes U+FFFD.
    public func decode(_ ids: [Int32], renderSpecial: Bool = false) -> String {
        var stream = TokenTextStream(tokenizer: self, renderSpecial: renderSpecial)
        var text = ""
        for id in ids { text += stream.append(id) }
        return text + stream.finish()
    }
}
