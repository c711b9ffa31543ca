/// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*` metadata).
public enum TokenizerLoader {
    public static func load(from gguf: GGUFFile) throws -> any Tokenizer {
        try load(metadata: gguf.metadata, source: gguf.path)
    }

    /// `source` names the file in error messages.
    static func load(metadata: [String: GGUFValue], source: String) throws -> any Tokenizer {
        guard let model = metadata["tokenizer.ggml.model"]?.stringValue else {
            throw HARPError.tokenizer("\(source): no tokenizer.ggml.model in the metadata")
        }
        switch model {
        case "gpt2":
            return try loadBPE(metadata: metadata, source: source)
        case "llama":
            return try loadSentencePiece(metadata: metadata, source: source)
        default:
            throw HARPError.tokenizer("\(source): unsupported tokenizer.ggml.model '\(model)'")
        }
    }

    /// llama.cpp's SPM vocabulary: pieces, scores and token types, with `add_space_prefix` and
    /// `add_bos_token` defaulting to true.
    private static func loadSentencePiece(metadata: [String: GGUFValue], source: String) throws -> SentencePieceTokenizer {
        guard let tokens = metadata["tokenizer.ggml.tokens"]?.stringArray, !tokens.isEmpty else {
            throw HARPError.tokenizer("\(source): tokenizer.ggml.tokens is missing or not a string array")
        }
        var scores = [Float](repeating: 0, count: tokens.count)
        if let value = metadata["tokenizer.ggml.scores"] {
            guard let values = value.floatArray, values.count == tokens.count else {
                throw HARPError.tokenizer("\(source): tokenizer.ggml.scores is not an array of \(tokens.count) numbers")
            }
            scores = values
        }
        var types = [TokenType](repeating: .normal, count: tokens.count)
        if let value = metadata["tokenizer.ggml.token_type"] {
            guard let codes = value.intArray, codes.count == tokens.count else {
                throw HARPError.tokenizer("\(source): tokenizer.ggml.token_type is not an array of \(tokens.count) integers")
            }
            types = codes.map { TokenType(rawValue: Int32(clamping: $0)) ?? .undefined }
        }
        let declaredUnknown = metadata["tokenizer.ggml.unknown_token_id"]?.intValue.flatMap { Int32(exactly: $0) }
        guard let unknown = declaredUnknown ?? types.firstIndex(of: .unknown).map(Int32.init),
              types.indices.contains(Int(unknown)) else {
            throw HARPError.tokenizer("\(source): SentencePiece vocabulary without a valid unknown token (tokenizer.ggml.unknown_token_id)")
        }
        // libsentencepiece knows the unknown piece by its type.
        types[Int(unknown)] = .unknown
        let proto = SentencePieceModelProto(
            pieces: tokens, scores: scores, types: types, unknownID: unknown,
            addSpacePrefix: metadata["tokenizer.ggml.add_space_prefix"]?.boolValue ?? true)
        let processor = try SentencePieceProcessor(serialized: proto.serialized(), source: source)

        func id(_ key: String) -> Int32? {
            metadata["tokenizer.ggml.\(key)_token_id"]?.intValue.flatMap { Int32(exactly: $0) }
        }
        do {
            return try SentencePieceTokenizer(
                processor: processor, types: types,
                addBOS: metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? true,
                specialTokenIDs: SpecialTokenIDs(bos: id("bos"), eos: id("eos"), eot: id("eot"), eom: id("eom")))
        } catch HARPError.tokenizer(let reason) {
            throw HARPError.tokenizer("\(source): \(reason)")
        }
    }

    private static func loadBPE(metadata: [String: GGUFValue], source: String) throws -> BPETokenizer {
        guard let tokens = metadata["tokenizer.ggml.tokens"]?.stringArray else {
            throw HARPError.tokenizer("\(source): tokenizer.ggml.tokens is missing or not a string array")
        }
        guard let merges = metadata["tokenizer.ggml.merges"]?.stringArray else {
            throw HARPError.tokenizer("\(source): BPE tokenizer without tokenizer.ggml.merges")
        }
        var tokenTypes: [Int32] = []
        if let value = metadata["tokenizer.ggml.token_type"] {
            guard let codes = value.intArray else {
                throw HARPError.tokenizer("\(source): tokenizer.ggml.token_type is not an integer array")
            }
            tokenTypes = codes.map { Int32(clamping: $0) }
        }

        func id(_ key: String) -> Int32? {
            metadata["tokenizer.ggml.\(key)_token_id"]?.intValue.flatMap { Int32(exactly: $0) }
        }
        let specialIDs = SpecialTokenIDs(
            bos: id("bos"), eos: id("eos"), eot: id("eot"), eom: id("eom"),
            fimPrefix: id("fim_pre"), fimSuffix: id("fim_suf"), fimMiddle: id("fim_mid"),
            fimPad: id("fim_pad"), fimRepository: id("fim_rep"), fimSeparator: id("fim_sep"))

        do {
            return try BPETokenizer(
                tokens: tokens, tokenTypes: tokenTypes, merges: merges,
                preTokenizer: PreTokenizer(ggmlName: metadata["tokenizer.ggml.pre"]?.stringValue),
                addBOS: metadata["tokenizer.ggml.add_bos_token"]?.boolValue,
                specialTokenIDs: specialIDs)
        } catch HARPError.tokenizer(let reason) {
            throw HARPError.tokenizer("\(source): \(reason)")
        }
    }
}
