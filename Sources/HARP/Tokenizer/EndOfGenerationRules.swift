/// llama.cpp's rules (`llama_vocab::impl::load`, build 4748) for special tokens a GGUF file does
/// not declare: end-of-turn and fill-in-the-middle tokens are recognised by their text and forced
/// to CONTROL type, and the end-of-generation set is built from fixed texts plus eos/eot/eom and
/// the FIM pad/repo/separator tokens.
enum EndOfGenerationRules {
    struct Resolution {
        var ids: SpecialTokenIDs
        var endOfGeneration: Set<Int32>
        /// Token types after llama.cpp's "control-looking token" overrides.
        var types: [TokenType]
    }

    private static let endOfTurnTexts = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>",
    ]
    /// Roles llama.cpp fills from token texts when the file does not declare them.
    private static var textsByRole: [(WritableKeyPath<SpecialTokenIDs, Int32?>, [String])] { [
        (\.eot, endOfTurnTexts),
        (\.eom, ["<|eom_id|>"]),
        (\.fimPrefix, ["<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>"]),
        (\.fimSuffix, ["<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>"]),
        (\.fimMiddle, ["<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>"]),
        (\.fimPad, ["<|fim_pad|>", "<fim-pad>", "<PAD>"]),
        (\.fimRepository, ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"]),
        (\.fimSeparator, ["<|file_sep|>"]),
    ] }
    private static let endOfGenerationTexts = [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
    ]

    static func resolve(declared: SpecialTokenIDs, idForText: [String: Int32], types: [TokenType]) -> Resolution {
        var ids = declared
        var types = types

        // llama.cpp iterates a hash map here, so with several matching texts its pick is
        // arbitrary; taking the first text of the list makes ours deterministic.
        for (role, texts) in textsByRole where ids[keyPath: role] == nil {
            if let id = texts.lazy.compactMap({ idForText[$0] }).first {
                ids[keyPath: role] = id
                types[Int(id)] = .control
            }
        }

        var endOfGeneration = Set([ids.fimPad, ids.fimRepository, ids.fimSeparator].compactMap { $0 })
        for text in endOfGenerationTexts {
            guard let id = idForText[text] else { continue }
            endOfGeneration.insert(id)
            types[Int(id)] = .control
        }
        endOfGeneration.formUnion([ids.eos, ids.eot, ids.eom].compactMap { $0 })
        return Resolution(ids: ids, endOfGeneration: endOfGeneration, types: types)
    }
}
