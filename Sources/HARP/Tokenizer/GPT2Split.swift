/// GPT-2's pre-tokenizer regex, hand-written the way llama.cpp's `unicode_regex_split_custom_gpt2`
/// evaluates it:
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
///
/// Text no alternative matches (a lone whitespace before a non-space) becomes a piece of its own,
/// and lookahead stops at the segment end, as in llama.cpp.
enum GPT2Split {
    static func split(_ text: ScalarText, _ segment: Range<Int>, into pieces: inout [Range<Int>]) {
        var position = segment.lowerBound
        while position < segment.upperBound {
            let pieceEnd = nextPieceEnd(text, position, segment.upperBound)
            pieces.append(position..<pieceEnd)
            position = pieceEnd
        }
    }

    private static func nextPieceEnd(_ text: ScalarText, _ position: Int, _ end: Int) -> Int {
        let values = text.values
        let classes = text.classes
        let value = values[position]

        func runEnd(from start: Int, _ matches: (CodepointClass) -> Bool) -> Int {
            var index = start
            while index < end && matches(classes[index]) { index += 1 }
            return index
        }

        // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
        if value == ASCIICode.apostrophe, position + 1 < end {
            if let length = Contractions.length(values, after: position, end: end, caseSensitive: true) {
                return position + length
            }
        }

        // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
        let first = value == ASCIICode.space ? position + 1 : position
        if first < end {
            let firstClass = classes[first]
            if firstClass.contains(.letter) { return runEnd(from: first + 1) { $0.contains(.letter) } }
            if firstClass.contains(.number) { return runEnd(from: first + 1) { $0.contains(.number) } }
            if firstClass.isOther { return runEnd(from: first + 1) { $0.isOther } }
        }

        // '\s+(?!\S)': leave the last whitespace to prefix the next word; then plain '\s+'.
        let whitespaceEnd = runEnd(from: position) { $0.contains(.whitespace) }
        let whitespaceCount = whitespaceEnd - position
        if whitespaceCount > 1 && whitespaceEnd < end { return whitespaceEnd - 1 }
        if whitespaceCount > 0 { return whitespaceEnd }
        return position + 1
    }
}
