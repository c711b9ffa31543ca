/// Serializes the SentencePiece `ModelProto` that llama.cpp's view of a GGUF vocabulary
/// (`tokenizer.ggml.model` = "llama") describes, so libsentencepiece can tokenize it without a
/// `tokenizer.model` file. Only the fields the tokenizer reads are written (protobuf wire format,
/// field numbers from sentencepiece_model.proto):
/// - a BPE model (llama.cpp's SPM tokenizer merges the best-scoring adjacent pair, as SentencePiece's BPE does);
/// - the identity normalizer: no Unicode normalization and no whitespace collapsing, spaces become
///   "▁", and a leading "▁" only with `add_space_prefix`;
/// - byte fallback when the vocabulary has byte tokens;
/// - one unknown piece: libsentencepiece refuses a second, so other pieces typed unknown (Phi-3's
///   `[PAD…]` fillers) are written as unused, which it never produces either.
struct SentencePieceModelProto {
    var pieces: [String]
    var scores: [Float]
    var types: [TokenType]
    var unknownID: Int32
    var addSpacePrefix: Bool

    func serialized() -> [UInt8] {
        var model = ProtoWriter()
        for (index, piece) in pieces.enumerated() {
            var entry = ProtoWriter()
            entry.string(1, piece)
            entry.float(2, scores[index])
            let type = types[index] == .unknown && index != Int(unknownID) ? TokenType.unused : types[index]
            entry.varint(3, UInt64(type.rawValue))
            model.message(1, entry)
        }
        var trainer = ProtoWriter()
        trainer.varint(3, 2)  // model_type = BPE
        trainer.varint(35, types.contains(.byte) ? 1 : 0)  // byte_fallback
        trainer.varint(40, UInt64(bitPattern: Int64(unknownID)))  // unk_id
        model.message(2, trainer)
        var normalizer = ProtoWriter()
        normalizer.string(1, "identity")
        normalizer.varint(3, addSpacePrefix ? 1 : 0)  // add_dummy_prefix
        normalizer.varint(4, 0)  // remove_extra_whitespaces
        normalizer.varint(5, 1)  // escape_whitespaces
        model.message(3, normalizer)
        return model.bytes
    }
}

/// The few protobuf wire-format encodings the model proto needs.
private struct ProtoWriter {
    var bytes: [UInt8] = []

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    mutating func varint(_ field: Int, _ value: UInt64) {
        key(field, wireType: 0)
        rawVarint(value)
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, wireType: 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ value: ProtoWriter) { lengthDelimited(field, value.bytes) }

    private mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        key(field, wireType: 2)
        rawVarint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }
}
