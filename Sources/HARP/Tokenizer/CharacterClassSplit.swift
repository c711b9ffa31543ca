/// Splits a segment at the matches of a one-character-class regex (`\p{N}`, `\p{N}+`,
/// `[0-9][0-9][0-9]`, ...): matches and the text between them each become a piece, as
/// llama.cpp's std::regex fallback (`unicode_regex_split_stl`) keeps both.
struct CharacterClassSplit: Sendable {
    enum Characters: Sendable {
        /// `\p{N}`
        case number
        /// `[0-9]`
        case asciiDigit
        /// `[\p{P}\$\+<=>\^~\|]`
        case punctuationAndASCIISymbols

        func contains(_ value: UInt32, _ valueClass: CodepointClass) -> Bool {
            switch self {
            case .number: return valueClass.contains(.number)
            case .asciiDigit: return (0x30...0x39).contains(value)
            case .punctuationAndASCIISymbols:
                return valueClass.contains(.punctuation) || Self.asciiSymbols.contains(value)
            }
        }

        private static let asciiSymbols: Set<UInt32> = Set("$+<=>^~|".unicodeScalars.map(\.value))
    }

    enum Repetition: Sendable {
        /// `x`: every matching character alone.
        case single
        /// `x+`: maximal runs.
        case run
        /// `x` repeated n times: leftmost, non-overlapping groups of exactly n.
        case exactly(Int)
    }

    let characters: Characters
    let repetition: Repetition

    func split(_ text: ScalarText, _ segment: Range<Int>, into pieces: inout [Range<Int>]) {
        var gapStart = segment.lowerBound
        var position = segment.lowerBound
        while position < segment.upperBound {
            guard let matchEnd = matchEnd(text, at: position, end: segment.upperBound) else {
                position += 1
                continue
            }
            if gapStart < position { pieces.append(gapStart..<position) }
            pieces.append(position..<matchEnd)
            position = matchEnd
            gapStart = matchEnd
        }
        if gapStart < segment.upperBound { pieces.append(gapStart..<segment.upperBound) }
    }

    private func matchEnd(_ text: ScalarText, at start: Int, end: Int) -> Int? {
        func matches(_ index: Int) -> Bool { characters.contains(text.values[index], text.classes[index]) }
        guard matches(start) else { return nil }
        switch repetition {
        case .single:
            return start + 1
        case .run:
            var index = start + 1
            while index < end && matches(index) { index += 1 }
            return index
        case .exactly(let count):
            guard start + count <= end else { return nil }
            return (start..<(start + count)).allSatisfy(matches) ? start + count : nil
        }
    }
}
