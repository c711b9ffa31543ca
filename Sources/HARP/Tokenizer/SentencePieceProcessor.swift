import CSentencePiece

/// Owns a libsentencepiece processor loaded from a `tokenizer.model` file or from a serialized
/// model built in memory.
final class SentencePieceProcessor: @unchecked Sendable {  // libsentencepiece's encoding and lookups are const and thread-safe
    private let handle: OpaquePointer

    /// - Parameter source: names the model in error messages.
    private init(source: String, load: (UnsafeMutablePointer<CChar>?, Int) -> OpaquePointer?) throws {
        var error = [CChar](repeating: 0, count: 512)
        guard let handle = error.withUnsafeMutableBufferPointer({ load($0.baseAddress, $0.count) }) else {
            let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw HARPError.tokenizer("\(source): libsentencepiece cannot load the model: \(message)")
        }
        self.handle = handle
    }

    convenience init(file path: String) throws {
        try self.init(source: path) { hsp_load_file(path, $0, $1) }
    }

    convenience init(serialized bytes: [UInt8], source: String) throws {
        try self.init(source: source) { error, size in
            bytes.withUnsafeBytes { hsp_load_serialized($0.baseAddress, $0.count, error, size) }
        }
    }

    deinit { hsp_free(handle) }

    var pieceCount: Int { Int(hsp_piece_count(handle)) }

    /// The stored text of a piece ("▁" for spaces, "<0x0A>" for byte pieces).
    func piece(_ id: Int32) -> String {
        var length = 0
        guard let bytes = hsp_piece(handle, id, &length) else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    func type(_ id: Int32) -> TokenType { TokenType(rawValue: hsp_piece_type(handle, id)) ?? .undefined }

    /// Special ids of the model's trainer spec (nil when unset).
    var bosID: Int32? { Self.optionalID(hsp_bos_id(handle)) }
    var eosID: Int32? { Self.optionalID(hsp_eos_id(handle)) }

    private static func optionalID(_ id: Int32) -> Int32? { id >= 0 ? id : nil }

    /// Token ids of UTF-8 text. Encoding cannot fail once a model is loaded; if the library still
    /// reports an error, the text yields no ids.
    func encode(_ utf8: ArraySlice<UInt8>) -> [Int32] {
        guard !utf8.isEmpty else { return [] }
        var ids = [Int32](repeating: 0, count: utf8.count + 8)
        return utf8.withUnsafeBytes { text in
            let base = text.baseAddress?.assumingMemoryBound(to: CChar.self)
            while true {
                let capacity = ids.count
                let n = ids.withUnsafeMutableBufferPointer {
                    hsp_encode(handle, base, text.count, $0.baseAddress, Int64(capacity), nil, 0)
                }
                if n < 0 { return [] }
                if n <= capacity { return Array(ids.prefix(Int(n))) }
                ids = [Int32](repeating: 0, count: Int(n))
            }
        }
    }
}
