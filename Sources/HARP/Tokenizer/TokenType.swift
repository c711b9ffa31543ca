/// The kind of a vocabulary entry, with the codes GGUF's `tokenizer.ggml.token_type` uses
/// (llama.cpp's `llama_token_type`).
public enum TokenType: Int32, Sendable {
    case undefined = 0
    case normal = 1
    case unknown = 2
    case control = 3
    case userDefined = 4
    case unused = 5
    case byte = 6

    /// Tokens llama.cpp hides when rendering without "special" (`LLAMA_TOKEN_ATTR_CONTROL | UNKNOWN`).
    var isSpecial: Bool { self == .control || self == .unknown }
}
