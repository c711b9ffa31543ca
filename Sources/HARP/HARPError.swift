/// Errors the HARP library reports. Every case names what was wrong and where (file, key,
/// tensor, layer or argument), so a command-line tool can print `description` as one line.
public enum HARPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file could not be opened or read.
    case io(path: String, reason: String)
    /// A GGUF file is malformed: bad magic, truncated, offsets or shapes out of range.
    case invalidGGUF(path: String, reason: String)
    /// A tensor type this build cannot compute with.
    case unsupportedTensorType(path: String, tensor: String, type: UInt32)
    /// Model metadata or tensors do not describe a model the runtime can run.
    case invalidModel(path: String, reason: String)
    /// The tokenizer description in the model is unusable, or text cannot be tokenized.
    case tokenizer(String)
    /// A request the runtime cannot serve (prompt longer than the context, bad sampling values, ...).
    case invalidRequest(String)
    /// A command-line or API argument is wrong.
    case invalidArgument(String)

    /// One line: control characters that reached a message (from a file name, a key, a string in a
    /// model) are escaped, and the whole is cut at 1000 characters.
    public var description: String { UntrustedText.escaped(rawDescription, limit: 1000) }

    private var rawDescription: String {
        switch self {
        case .io(let path, let reason): return "\(path): \(reason)"
        case .invalidGGUF(let path, let reason): return "\(path): invalid GGUF file: \(reason)"
        case .unsupportedTensorType(let path, let tensor, let type):
            return "\(path): tensor '\(tensor)' has type \(GGMLType.name(of: type)), which this build does not support"
        case .invalidModel(let path, let reason): return "\(path): \(reason)"
        case .tokenizer(let reason): return "tokenizer: \(reason)"
        case .invalidRequest(let reason): return reason
        case .invalidArgument(let reason): return reason
        }
    }
}
