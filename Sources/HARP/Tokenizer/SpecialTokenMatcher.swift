/// Cuts text at the texts of special tokens before BPE, as llama.cpp's `tokenizer_st_partition`:
/// tokens are tried longest text first, each one splitting every stretch of ordinary text left by
/// the previous ones. Control and unknown tokens count only with `parseSpecial`; user-defined
/// tokens always do (Hugging Face tokenizers treat them as added tokens).
struct SpecialTokenMatcher: Sendable {
    enum Fragment: Equatable {
        /// Ordinary text, as a range of the UTF-8 bytes.
        case text(Range<Int>)
        case token(Int32)
    }

    private struct Candidate: Sendable {
        let id: Int32
        let bytes: [UInt8]
        let needsParseSpecial: Bool
    }

    private let candidates: [Candidate]

    init(texts: [String], types: [TokenType]) {
        var found: [Candidate] = []
        for (index, (text, type)) in zip(texts, types).enumerated() where !text.isEmpty {
            switch type {
            case .control, .unknown:
                found.append(Candidate(id: Int32(index), bytes: Array(text.utf8), needsParseSpecial: true))
            case .userDefined:
                found.append(Candidate(id: Int32(index), bytes: Array(text.utf8), needsParseSpecial: false))
            default:
                break
            }
        }
        // Stable on ties, so equal-length texts keep id order.
        candidates = found.enumerated()
            .sorted { ($0.element.bytes.count, -$0.offset) > ($1.element.bytes.count, -$1.offset) }
            .map(\.element)
    }

    func partition(_ utf8: [UInt8], parseSpecial: Bool) -> [Fragment] {
        guard !utf8.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(0..<utf8.count)]
        for candidate in candidates where parseSpecial || !candidate.needsParseSpecial {
            var refined: [Fragment] = []
            refined.reserveCapacity(fragments.count)
            for fragment in fragments {
                guard case .text(let range) = fragment else {
                    refined.append(fragment)
                    continue
                }
                var start = range.lowerBound
                while let match = Self.firstOccurrence(of: candidate.bytes, in: utf8, from: start, to: range.upperBound) {
                    if match > start { refined.append(.text(start..<match)) }
                    refined.append(.token(candidate.id))
                    start = match + candidate.bytes.count
                }
                if start < range.upperBound { refined.append(.text(start..<range.upperBound)) }
            }
            fragments = refined
        }
        return fragments
    }

    private static func firstOccurrence(of needle: [UInt8], in haystack: [UInt8], from start: Int, to end: Int) -> Int? {
        guard let first = needle.first, end - start >= needle.count else { return nil }
        let lastStart = end - needle.count
        return haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pattern in
                var position = start
                while position <= lastStart {
                    if hay[position] == first {
                        var length = 1
                        while length < pattern.count && hay[position + length] == pattern[length] { length += 1 }
                        if length == pattern.count { return position }
                    }
                    position += 1
                }
                return nil
            }
        }
    }
}
