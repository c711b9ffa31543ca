/// A text fragment as the pre-tokenizer scans it: its Unicode scalars, each one's class, and where
/// each scalar starts in the UTF-8 bytes (so pieces can be cut from the bytes without re-encoding).
struct ScalarText {
    private(set) var values: [UInt32] = []
    private(set) var classes: [CodepointClass] = []
    /// `byteOffsets[i]` is where scalar `i` starts; one extra entry holds the total byte count.
    private(set) var byteOffsets: [Int] = []

    init(_ text: String) {
        let byteCount = text.utf8.count
        values.reserveCapacity(byteCount)
        classes.reserveCapacity(byteCount)
        byteOffsets.reserveCapacity(byteCount + 1)
        var offset = 0
        for scalar in text.unicodeScalars {
            values.append(scalar.value)
            classes.append(CodepointClass(scalar))
            byteOffsets.append(offset)
            offset += UTF8.width(scalar)
        }
        byteOffsets.append(offset)
    }

    var count: Int { values.count }

    /// The UTF-8 byte range of a range of scalars.
    func byteRange(of scalars: Range<Int>) -> Range<Int> {
        byteOffsets[scalars.lowerBound]..<byteOffsets[scalars.upperBound]
    }
}

/// Code points the split rules compare against.
enum ASCIICode {
    static let space: UInt32 = 0x20
    static let carriageReturn: UInt32 = 0x0D
    static let lineFeed: UInt32 = 0x0A
    static let apostrophe: UInt32 = 0x27

    static func isNewline(_ value: UInt32) -> Bool { value == lineFeed || value == carriageReturn }

    /// ASCII lower-casing; the contraction rules only ever compare with ASCII letters.
    static func lowercased(_ value: UInt32) -> UInt32 {
        (0x41...0x5A).contains(value) ? value + 0x20 : value
    }
}
