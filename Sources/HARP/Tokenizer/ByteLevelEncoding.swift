/// GPT-2's reversible byte ↔ character mapping. Byte-level BPE vocabularies store every byte as a
/// printable character: bytes that are printable Latin-1 keep their code point, the other 68 bytes
/// map in order to U+0100, U+0101, ... (so a space is stored as "Ġ" = U+0120).
enum ByteLevelEncoding {
    /// The character that stands for each byte.
    static let scalarForByte: [Unicode.Scalar] = {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(256)
        var nextExtra: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(UInt8(byte)) {
                scalars.append(Unicode.Scalar(UInt8(byte)))
            } else {
                // 256 + n is below the surrogate range, so the initialiser cannot fail.
                scalars.append(Unicode.Scalar(nextExtra) ?? "?")
                nextExtra += 1
            }
        }
        return scalars
    }()

    /// The byte each mapped character stands for.
    static let byteForScalar: [UInt32: UInt8] = {
        var table: [UInt32: UInt8] = [:]
        for (byte, scalar) in scalarForByte.enumerated() { table[scalar.value] = UInt8(byte) }
        return table
    }()

    /// The mapped text of raw bytes.
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var text = String.UnicodeScalarView()
        for byte in bytes { text.append(scalarForByte[Int(byte)]) }
        return String(text)
    }

    /// The raw bytes of a vocabulary entry. Characters outside the mapping (never produced by a
    /// correct converter) are kept as their own UTF-8 rather than dropped.
    static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            if let byte = byteForScalar[scalar.value] {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: String(scalar).utf8)
            }
        }
        return bytes
    }

    private static func isPrintable(_ byte: UInt8) -> Bool {
        (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
    }
}
