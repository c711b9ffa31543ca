/// The English contraction suffixes the GPT-2 family of regexes keeps together.
enum Contractions {
    /// The length of a contraction starting with the apostrophe at `position`, if there is one.
    static func length(_ values: [UInt32], after position: Int, end: Int, caseSensitive: Bool) -> Int? {
        func fold(_ value: UInt32) -> UInt32 { caseSensitive ? value : ASCIICode.lowercased(value) }
        let next = fold(values[position + 1])
        if next == 0x73 || next == 0x74 || next == 0x6D || next == 0x64 { return 2 }  // s t m d
        guard position + 2 < end else { return nil }
        let afterNext = fold(values[position + 2])
        switch (next, afterNext) {
        case (0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C): return 3  // re ve ll
        default: return nil
        }
    }
}
