import Foundation

/// A model's chat format, recognised from the Jinja text in `tokenizer.chat_template` (or, when a
/// file has none, from the turn-marker tokens of its vocabulary). Rendering reproduces what the
/// recognised template produces, without a Jinja interpreter: the families differ in a handful of
/// details (default system prompt, trimming, where the system message goes), read from the
/// template text here.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case chatML = "ChatML", llama3 = "Llama 3", gemma = "Gemma", mistral = "Mistral"
    }

    /// How the format was chosen.
    public enum Source: Sendable, Equatable {
        /// Recognised from `tokenizer.chat_template`.
        case template
        /// The file has no template; the vocabulary has this family's turn marker.
        case vocabulary(marker: String)
        /// The template (or its absence) matched no family; ChatML is used instead.
        case fallback(reason: String)
    }

    /// Details of one family that differ between its templates.
    enum Variant: Sendable, Equatable {
        /// ChatML; some templates (SmolLM2, Qwen2.5) insert a system message when the first message is not one.
        case chatML(defaultSystem: String?)
        /// Llama 3; 3.1 and later always open with a system header holding a knowledge-date preamble.
        case llama3(dateString: String?)
        /// Gemma 3 prepends the system message to the first user turn; Gemma 1/2 templates reject it.
        case gemma(systemAsUserPrefix: Bool)
        /// Mistral v1/v2 (`[INST] x [/INST]`, no system role) or v3 (`[INST] x[/INST]`, system before the last user turn).
        case mistral(v3: Bool)
    }

    public let family: Family
    public let source: Source
    let variant: Variant
    /// Texts of the BOS and EOS tokens, which templates write as `bos_token` / `eos_token`.
    let bosText: String
    let eosText: String

    init(variant: Variant, source: Source, bosText: String, eosText: String) {
        self.variant = variant
        self.source = source
        self.bosText = bosText
        self.eosText = eosText
        switch variant {
        case .chatML: family = .chatML
        case .llama3: family = .llama3
        case .gemma: family = .gemma
        case .mistral: family = .mistral
        }
    }

    /// The format for a model: from `tokenizer.chat_template` when present and recognised.
    public static func load(from file: GGUFFile, tokenizer: any Tokenizer) -> ChatTemplate {
        recognise(templateText: file.metadata["tokenizer.chat_template"]?.stringValue, tokenizer: tokenizer)
    }

    /// Recognises `templateText` (nil: the file has none), with BOS/EOS texts from `tokenizer`.
    public static func recognise(templateText: String?, tokenizer: any Tokenizer) -> ChatTemplate {
        func text(_ id: Int32?) -> String { id.map { String(decoding: tokenizer.tokenPiece($0), as: UTF8.self) } ?? "" }
        let bos = text(tokenizer.bosID), eos = text(tokenizer.eosID)
        if let templateText {
            if let variant = variant(ofTemplate: templateText) {
                return ChatTemplate(variant: variant, source: .template, bosText: bos, eosText: eos)
            }
            return ChatTemplate(variant: .chatML(defaultSystem: nil),
                                source: .fallback(reason: "the model's chat template is not one of \(familyList)"),
                                bosText: bos, eosText: eos)
        }
        for (marker, variant) in vocabularyMarkers where tokenizer.tokenID(forText: marker) != nil {
            return ChatTemplate(variant: variant, source: .vocabulary(marker: marker), bosText: bos, eosText: eos)
        }
        return ChatTemplate(variant: .chatML(defaultSystem: nil),
                            source: .fallback(reason: "the model has no chat template and no known turn-marker tokens"),
                            bosText: bos, eosText: eos)
    }

    /// One line for the user saying which format is used and why; nil when the template was recognised.
    public var notice: String? {
        switch source {
        case .template: return nil
        case .vocabulary(let marker):
            return "the model has no chat template (tokenizer.chat_template); using the \(family.rawValue) format because its vocabulary has \(marker)"
        case .fallback(let reason):
            return "\(reason); falling back to ChatML, so replies may be poor"
        }
    }

    private static let familyList = Family.allCases.map(\.rawValue).joined(separator: ", ")

    private static let vocabularyMarkers: [(String, Variant)] = [
        ("<|im_start|>", .chatML(defaultSystem: nil)),
        ("<|start_header_id|>", .llama3(dateString: nil)),
        ("<start_of_turn>", .gemma(systemAsUserPrefix: true)),
        ("[INST]", .mistral(v3: false)),
    ]

    /// The family and details of a Jinja template's text, or nil when it is none of the known ones.
    static func variant(ofTemplate text: String) -> Variant? {
        if text.contains("<|im_start|>") {
            return .chatML(defaultSystem: defaultChatMLSystem(in: text))
        }
        if text.contains("<|start_header_id|>") {
            guard text.contains("Cutting Knowledge Date") else { return .llama3(dateString: nil) }
            return .llama3(dateString: firstCapture(#"set date_string = "([^"]*)""#, in: text) ?? "26 Jul 2024")
        }
        if text.contains("<start_of_turn>") {
            return .gemma(systemAsUserPrefix: text.contains("first_user_prefix"))
        }
        if text.contains("[INST]") {
            return .mistral(v3: !text.contains(" [/INST]") && text.contains("system_message"))
        }
        return nil
    }

    /// The literal system text a ChatML template writes when the conversation has no system message:
    /// a string literal `<|im_start|>system⏎TEXT<|im_end|>` whose TEXT is not an expression.
    private static func defaultChatMLSystem(in text: String) -> String? {
        guard let literal = firstCapture(#"<\|im_start\|>system(?:\\n|\n)([^'"]+?)<\|im_end\|>"#, in: text) else { return nil }
        return literal.replacingOccurrences(of: "\\n", with: "\n")
    }

    private static func firstCapture(_ pattern: String, in text: String) -> String? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
              let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
              let range = Range(match.range(at: 1), in: text) else { return nil }
        return String(text[range])
    }
}

/// A conversation the chat format cannot express (the templates raise these same errors).
public enum ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyConversation
    /// The template has no place for messages of this role.
    case unsupportedRole(ChatRole, family: ChatTemplate.Family)
    /// After the optional system message, user and assistant must alternate starting with user.
    case rolesMustAlternate(family: ChatTemplate.Family)

    public var description: String {
        switch self {
        case .emptyConversation: return "the conversation has no messages"
        case .unsupportedRole(let role, let family): return "the \(family.rawValue) chat template does not support \(role.rawValue) messages"
        case .rolesMustAlternate(let family):
            return "the \(family.rawValue) chat template needs user and assistant messages to alternate, starting with user"
        }
    }
}
