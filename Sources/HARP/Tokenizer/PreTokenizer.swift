/// How text is cut into words before BPE, following the regex lists llama.cpp's `llama-vocab.cpp`
/// assigns to each `tokenizer.ggml.pre` value. Each regex of a list refines the pieces the
/// previous one produced.
public enum PreTokenizer: String, Sendable, CaseIterable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)` (gpt-2, mpt, olmo, jais).
    case gpt2
    /// `\p{N}` (every digit alone), then the GPT-2 regex (smollm, starcoder, refact, command-r,
    /// codeshell, exaone).
    case gpt2SingleDigits
    /// The Llama-3 regex: case-insensitive contractions, digits in groups of up to three.
    case llama3
    /// The Llama-3 regex with single digits (qwen2, stablelm2, deepseek-r1-qwen).
    case qwen2
    /// llama.cpp's fallback for BPE models without a pre-tokenizer name: punctuation runs, GPT-2,
    /// number runs, then groups of three ASCII digits.
    case llamaCppDefault

    /// The pre-tokenizer for a `tokenizer.ggml.pre` value (`nil` or "default" → `.llamaCppDefault`).
    public init(ggmlName: String?) throws {
        switch ggmlName ?? "default" {
        case "default", "": self = .llamaCppDefault
        case "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "roberta-bpe": self = .gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone": self = .gpt2SingleDigits
        case "llama3", "llama-v3", "llama-bpe", "falcon3": self = .llama3
        case "qwen2", "deepseek-r1-qwen", "stablelm2": self = .qwen2
        case let other:
            throw HARPError.tokenizer("unsupported pre-tokenizer type '\(other)' (tokenizer.ggml.pre)")
        }
    }

    /// llama.cpp skips BPE for words that are whole vocabulary entries with these (`ignore_merges`).
    var ignoresMerges: Bool { self == .llama3 }

    /// llama.cpp's `add_bos` before `tokenizer.ggml.add_bos_token` overrides it.
    var addsBOSByDefault: Bool { self == .llama3 }

    private var stages: [Stage] {
        switch self {
        case .gpt2: return [.gpt2]
        case .gpt2SingleDigits: return [.characterClass(.init(characters: .number, repetition: .single)), .gpt2]
        case .llama3: return [.llama3(maxDigits: 3)]
        case .qwen2: return [.llama3(maxDigits: 1)]
        case .llamaCppDefault:
            return [
                .characterClass(.init(characters: .punctuationAndASCIISymbols, repetition: .run)),
                .gpt2,
                .characterClass(.init(characters: .number, repetition: .run)),
                .characterClass(.init(characters: .asciiDigit, repetition: .exactly(3))),
            ]
        }
    }

    /// The words of `text`, as scalar ranges that cover it in order.
    func split(_ text: ScalarText) -> [Range<Int>] {
        var pieces: [Range<Int>] = text.count > 0 ? [0..<text.count] : []
        for stage in stages {
            var refined: [Range<Int>] = []
            refined.reserveCapacity(pieces.count * 2 + text.count / 4)
            for piece in pieces { stage.split(text, piece, into: &refined) }
            pieces = refined
        }
        return pieces
    }

    private enum Stage {
        case gpt2
        case llama3(maxDigits: Int)
        case characterClass(CharacterClassSplit)

        func split(_ text: ScalarText, _ segment: Range<Int>, into pieces: inout [Range<Int>]) {
            switch self {
            case .gpt2: GPT2Split.split(text, segment, into: &pieces)
            case .llama3(let maxDigits): Llama3Split.split(text, segment, maxDigits: maxDigits, into: &pieces)
            case .characterClass(let rule): rule.split(text, segment, into: &pieces)
            }
        }
    }
}
