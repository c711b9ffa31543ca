/// Ids of a vocabulary's special tokens. The loader fills them from `tokenizer.ggml.*_token_id`;
/// `BPETokenizer` finds missing end-of-turn and fill-in-the-middle tokens by their text, as
/// llama.cpp does.
public struct SpecialTokenIDs: Sendable, Equatable {
    public var bos: Int32?
    public var eos: Int32?
    /// End of turn (`<|im_end|>`, `<|eot_id|>`, ...).
    public var eot: Int32?
    /// End of message (`<|eom_id|>`).
    public var eom: Int32?
    public var fimPrefix: Int32?
    public var fimSuffix: Int32?
    public var fimMiddle: Int32?
    public var fimPad: Int32?
    public var fimRepository: Int32?
    public var fimSeparator: Int32?

    public init(
        bos: Int32? = nil, eos: Int32? = nil, eot: Int32? = nil, eom: Int32? = nil,
        fimPrefix: Int32? = nil, fimSuffix: Int32? = nil, fimMiddle: Int32? = nil,
        fimPad: Int32? = nil, fimRepository: Int32? = nil, fimSeparator: Int32? = nil
    ) {
        self.bos = bos
        self.eos = eos
        self.eot = eot
        self.eom = eom
        self.fimPrefix = fimPrefix
        self.fimSuffix = fimSuffix
        self.fimMiddle = fimMiddle
        self.fimPad = fimPad
        self.fimRepository = fimRepository
        self.fimSeparator = fimSeparator
    }
}

extension SpecialTokenIDs {
    /// These ids with every id outside `0..<vocabularySize` removed.
    func restricted(toVocabularySize vocabularySize: Int) -> SpecialTokenIDs {
        var result = self
        let roles: [WritableKeyPath<SpecialTokenIDs, Int32?>] = [
            \.bos, \.eos, \.eot, \.eom, \.fimPrefix, \.fimSuffix, \.fimMiddle, \.fimPad, \.fimRepository, \.fimSeparator,
        ]
        for role in roles {
            if let id = result[keyPath: role], !(0..<vocabularySize).contains(Int(id)) { result[keyPath: role] = nil }
        }
        return result
    }
}
