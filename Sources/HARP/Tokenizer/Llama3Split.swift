/// The Llama-3 / Qwen2 pre-tokenizer regex, hand-written after llama.cpp's
/// `unicode_regex_split_custom_llama3`:
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
///     \s*[\r\n]+|\s+(?!\S)|\s+
///
/// with N = 3 for Llama 3 and N = 1 for Qwen2 (whose regex has `\p{N}`; llama.cpp runs that one
/// through std::regex, which gives the same pieces).
enum Llama3Split {
    static func split(
        _ text: ScalarText, _ segment: Range<Int>, maxDigits: Int, into pieces: inout [Range<Int>]
    ) {
        var position = segment.lowerBound
        while position < segment.upperBound {
            let pieceEnd = nextPieceEnd(text, position, segment.upperBound, maxDigits: maxDigits)
            pieces.append(position..<pieceEnd)
            position = pieceEnd
        }
    }

    private static func nextPieceEnd(_ text: ScalarText, _ position: Int, _ end: Int, maxDigits: Int) -> Int {
        let values = text.values
        let classes = text.classes
        let value = values[position]
        let valueClass = classes[position]

        func runEnd(from start: Int, _ matches: (CodepointClass) -> Bool) -> Int {
            var index = start
            while index < end && matches(classes[index]) { index += 1 }
            return index
        }

        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if value == ASCIICode.apostrophe, position + 1 < end {
            if let length = Contractions.length(values, after: position, end: end, caseSensitive: false) {
                return position + length
            }
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !ASCIICode.isNewline(value) && !valueClass.contains(.number) {
            if valueClass.contains(.letter) || (position + 1 < end && classes[position + 1].contains(.letter)) {
                return runEnd(from: position + 1) { $0.contains(.letter) }
            }
        }

        // \p{N}{1,maxDigits}
        if valueClass.contains(.number) {
            return min(runEnd(from: position) { $0.contains(.number) }, position + maxDigits)
        }

        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        let first = value == ASCIICode.space ? position + 1 : position
        if first < end && classes[first].isOther {
            var index = runEnd(from: first + 1) { $0.isOther }
            while index < end && ASCIICode.isNewline(values[index]) { index += 1 }
            return index
        }

        // \s*[\r\n]+ : the whitespace run up to its last line break.
        let whitespaceEnd = runEnd(from: position) { $0.contains(.whitespace) }
        if let lastBreak = (position..<whitespaceEnd).last(where: { ASCIICode.isNewline(values[$0]) }) {
            return lastBreak + 1
        }

        // \s+(?!\S), then \s+
        let whitespaceCount = whitespaceEnd - position
        if whitespaceCount > 1 && whitespaceEnd < end { return whitespaceEnd - 1 }
        if whitespaceCount > 0 { return whitespaceEnd }
        return position + 1
    }
}
