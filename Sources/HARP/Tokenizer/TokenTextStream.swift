/// Turns generated token ids into text as they arrive. A character whose bytes are spread over
/// several tokens is held back until it is complete, so chunks never split UTF-8; bytes that can
/// never form a character become U+FFFD. Control and unknown tokens render as nothing unless
/// `renderSpecial` is set.
public struct TokenTextStream: Sendable {
    public let tokenizer: any Tokenizer
    public var renderSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// The text that `id` completes (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        if !renderSpecial && tokenizer.tokenType(id).isSpecial { return "" }
        pending.append(contentsOf: tokenizer.tokenPiece(id))
        let heldBack = UTF8Completion.incompleteSuffixLength(pending)
        let text = String(decoding: pending[..<(pending.count - heldBack)], as: UTF8.self)
        pending.removeFirst(pending.count - heldBack)
        return text
    }

    /// Whatever is still held back, with an unfinished character as U+FFFD; the stream is then empty.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
