/// The Unicode classes llama.cpp's pre-tokenizer regexes test: `\p{L}`, `\p{N}`, `\p{P}` (from the
/// general category) and `\s` (the White_Space property, which is independent of the category).
struct CodepointClass: OptionSet, Sendable {
    let rawValue: UInt8

    static let letter = CodepointClass(rawValue: 1 << 0)
    static let number = CodepointClass(rawValue: 1 << 1)
    static let whitespace = CodepointClass(rawValue: 1 << 2)
    static let punctuation = CodepointClass(rawValue: 1 << 3)

    /// Neither whitespace, letter nor number: what `[^\s\p{L}\p{N}]` matches.
    var isOther: Bool { isDisjoint(with: [.letter, .number, .whitespace]) }

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init(_ scalar: Unicode.Scalar) {
        if scalar.isASCII {
            self = CodepointClass.asciiTable[Int(scalar.value)]
        } else {
            self = CodepointClass.classify(scalar)
        }
    }

    /// ASCII dominates real text, so its classes are looked up rather than computed.
    private static let asciiTable: [CodepointClass] = (0..<128).map { value in
        classify(Unicode.Scalar(UInt8(value)))
    }

    private static func classify(_ scalar: Unicode.Scalar) -> CodepointClass {
        let properties = scalar.properties
        var result: CodepointClass = properties.isWhitespace ? .whitespace : []
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            result.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            result.insert(.number)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            result.insert(.punctuation)
        default:
            break
        }
        return result
    }
}
