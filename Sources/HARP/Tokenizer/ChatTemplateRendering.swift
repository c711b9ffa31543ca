import Foundation

extension ChatTemplate {
    /// The prompt text the model's Jinja template renders for `messages`; with
    /// `addGenerationPrompt`, followed by the opening of an assistant turn. Special tokens appear as
    /// their text (`<|im_start|>`, `<bos>`), so tokenize the result with special-token parsing.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        guard !messages.isEmpty else { throw ChatTemplateError.emptyConversation }
        switch variant {
        case .chatML(let defaultSystem):
            return renderChatML(messages, defaultSystem: defaultSystem, addGenerationPrompt: addGenerationPrompt)
        case .llama3(let dateString):
            return renderLlama3(messages, dateString: dateString, addGenerationPrompt: addGenerationPrompt)
        case .gemma(let systemAsUserPrefix):
            return try renderGemma(messages, systemAsUserPrefix: systemAsUserPrefix, addGenerationPrompt: addGenerationPrompt)
        case .mistral(let v3):
            return try renderMistral(messages, v3: v3)
        }
    }

    /// Jinja's `trim` filter (Python's `str.strip()`).
    private func trim(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    private func renderChatML(_ messages: [ChatMessage], defaultSystem: String?, addGenerationPrompt: Bool) -> String {
        var out = ""
        if let defaultSystem, messages[0].role != .system {
            out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role.rawValue)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }

    private func renderLlama3(_ messages: [ChatMessage], dateString: String?, addGenerationPrompt: Bool) -> String {
        func turn(_ role: String, _ content: String) -> String { "<|start_header_id|>\(role)<|end_header_id|>\n\n\(content)<|eot_id|>" }
        var out = bosText
        var rest = messages[...]
        if let dateString {
            // 3.1+: the system header is always there, the system message (if any) after the preamble.
            var system = ""
            if messages[0].role == .system {
                system = trim(messages[0].content)
                rest = messages.dropFirst()
            }
            out += turn("system", "Cutting Knowledge Date: December 2023\nToday Date: \(dateString)\n\n" + system)
        }
        for m in rest { out += turn(m.role.rawValue, trim(m.content)) }
        if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        return out
    }

    private func renderGemma(_ messages: [ChatMessage], systemAsUserPrefix: Bool, addGenerationPrompt: Bool) throws -> String {
        var firstUserPrefix = ""
        var turns = messages[...]
        if messages[0].role == .system {
            guard systemAsUserPrefix else { throw ChatTemplateError.unsupportedRole(.system, family: .gemma) }
            firstUserPrefix = messages[0].content + "\n\n"
            turns = messages.dropFirst()
        }
        try checkAlternation(turns, family: .gemma)
        var out = bosText
        for (i, m) in turns.enumerated() {
            let role = m.role == .assistant ? "model" : m.role.rawValue
            out += "<start_of_turn>\(role)\n" + (i == 0 ? firstUserPrefix : "") + trim(m.content) + "<end_of_turn>\n"
        }
        if addGenerationPrompt { out += "<start_of_turn>model\n" }
        return out
    }

    /// Mistral templates have no generation prompt: the prompt ends with `[/INST]` after a user turn.
    private func renderMistral(_ messages: [ChatMessage], v3: Bool) throws -> String {
        var system: String?
        var turns = messages[...]
        if messages[0].role == .system {
            guard v3 else { throw ChatTemplateError.unsupportedRole(.system, family: .mistral) }
            system = messages[0].content
            turns = messages.dropFirst()
        }
        try checkAlternation(turns, family: .mistral)
        if turns.contains(where: { $0.role == .system }) { throw ChatTemplateError.unsupportedRole(.system, family: .mistral) }
        var out = bosText
        for (i, m) in turns.enumerated() {
            if m.role == .user {
                if v3 {
                    // v3 puts the system message before the last message, when that is a user turn.
                    let prefix = (i == turns.count - 1 ? system.map { $0 + "\n\n" } : nil) ?? ""
                    out += "[INST] " + prefix + m.content + "[/INST]"
                } else {
                    out += "[INST] " + m.content + " [/INST]"
                }
            } else {
                out += (v3 ? " " + trim(m.content) : m.content) + eosText
            }
        }
        return out
    }

    /// The templates' check `(role == 'user') != (index % 2 == 0)` → error.
    private func checkAlternation(_ turns: ArraySlice<ChatMessage>, family: Family) throws {
        for (i, m) in turns.enumerated() {
            guard (m.role == .user) == (i % 2 == 0) else { throw ChatTemplateError.rolesMustAlternate(family: family) }
        }
    }
}
