/// The merge rules of a byte-level BPE vocabulary, keyed by symbol ids.
///
/// llama.cpp ranks merges by the texts of the two parts; interning every text as an id gives the
/// same answers without building strings in the merge loop. Symbols are vocabulary ids, and texts
/// that merges mention but the vocabulary lacks get ids from `vocabularySize` upwards.
struct BPEMergeTable: Sendable {
    struct Merge: Sendable {
        /// Position in `tokenizer.ggml.merges`: lower merges first.
        let rank: Int32
        /// The symbol the two parts become.
        let result: Int32
    }

    let vocabularySize: Int
    /// The initial symbol of each byte (the vocabulary entry of its GPT-2 character).
    let byteSymbols: [Int32]
    /// Texts of the symbols that are not vocabulary entries, at index `id - vocabularySize`.
    let extraSymbolTexts: [String]
    private let merges: [UInt64: Merge]

    /// - Parameters:
    ///   - idForText: the vocabulary's text → id map.
    ///   - merges: "left right" lines; the first occurrence of a pair sets its rank.
    init(idForText: [String: Int32], vocabularySize: Int, merges mergeLines: [String]) {
        self.vocabularySize = vocabularySize
        var extraIDs: [String: Int32] = [:]
        var extraTexts: [String] = []

        func intern(_ text: String) -> Int32 {
            if let id = idForText[text] ?? extraIDs[text] { return id }
            let id = Int32(vocabularySize + extraTexts.count)
            extraIDs[text] = id
            extraTexts.append(text)
            return id
        }

        byteSymbols = ByteLevelEncoding.scalarForByte.map { intern(String($0)) }

        var table: [UInt64: Merge] = [:]
        table.reserveCapacity(mergeLines.count)
        for (rank, line) in mergeLines.enumerated() {
            // Like llama.cpp, split at the first space after the first byte, so a merge whose
            // left part is a literal space (not "Ġ") still parses.
            let bytes = line.utf8
            guard let separator = bytes.dropFirst().firstIndex(of: 0x20) else { continue }
            let left = String(line[..<separator])
            let right = String(line[bytes.index(after: separator)...])
            let key = Self.key(intern(left), intern(right))
            if table[key] == nil {
                table[key] = Merge(rank: Int32(rank), result: intern(left + right))
            }
        }
        merges = table
        extraSymbolTexts = extraTexts
    }

    func merge(_ left: Int32, _ right: Int32) -> Merge? {
        merges[Self.key(left, right)]
    }

    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }
}
