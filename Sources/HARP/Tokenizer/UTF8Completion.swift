/// Finds where a byte buffer stops being decodable yet: the trailing bytes that begin a UTF-8
/// sequence which later bytes may still complete.
enum UTF8Completion {
    /// The length of the incomplete but so-far valid sequence at the end of `bytes` (0 if none).
    static func incompleteSuffixLength<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> Int
    where Bytes.Element == UInt8, Bytes.Index == Int {
        var leadIndex = bytes.endIndex - 1
        while leadIndex >= bytes.startIndex && bytes.endIndex - leadIndex <= 3 && isContinuation(bytes[leadIndex]) {
            leadIndex -= 1
        }
        guard leadIndex >= bytes.startIndex else { return 0 }
        let lead = bytes[leadIndex]
        let available = bytes.endIndex - leadIndex
        guard let needed = sequenceLength(lead), needed > available else { return 0 }
        if available >= 2 && !secondByteRange(lead).contains(bytes[leadIndex + 1]) { return 0 }
        return available
    }

    private static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

    /// The length a lead byte announces; nil for bytes that cannot start a sequence.
    private static func sequenceLength(_ lead: UInt8) -> Int? {
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: return 2
        case 0xE0...0xEF: return 3
        case 0xF0...0xF4: return 4
        default: return nil
        }
    }

    /// Second bytes that keep a sequence valid (no overlongs, surrogates or values past U+10FFFF).
    private static func secondByteRange(_ lead: UInt8) -> ClosedRange<UInt8> {
        switch lead {
        case 0xE0: return 0xA0...0xBF
        case 0xED: return 0x80...0x9F
        case 0xF0: return 0x90...0xBF
        case 0xF4: return 0x80...0x8F
        default: return 0x80...0xBF
        }
    }
}
