import Foundation
import HARP

/// A validated `/v1/chat/completions` or `/v1/completions` body. Every field is checked by name;
/// unknown fields are ignored (clients send many optional ones), null counts as absent.
struct CompletionBody: Sendable {
    var prompt: Prompt
    var model: String?
    /// nil: the server's default (`OpenAIServer.defaultMaxTokens`, bounded by the context left).
    var maxTokens: Int?
    var sampling: SamplingParameters
    var stop: [String]
    var stream: Bool
    var includeUsage: Bool

    var isChat: Bool { if case .chat = prompt { return true } else { return false } }

    static let roles: [String: @Sendable (String) -> ChatMessage] = [
        "system": ChatMessage.system, "developer": ChatMessage.system, "user": ChatMessage.user, "assistant": ChatMessage.assistant,
    ]

    init(json body: [UInt8], chat: Bool) throws(RequestError) {
        let f = try JSONFields(JSONValue.parse(body), path: "")
        if chat {
            guard let list = f.value("messages") else { throw RequestError("messages", "is required") }
            guard case .array(let items) = list else { throw RequestError("messages", "expected an array, got \(list.typeName)") }
            guard !items.isEmpty else { throw RequestError("messages", "must not be empty") }
            var messages: [ChatMessage] = []
            for (i, item) in items.enumerated() {
                let m = try JSONFields(item, path: "messages[\(i)]")
                guard let role = try m.string("role") else { throw RequestError(m.name("role"), "is required") }
                guard let make = Self.roles[role] else {
                    throw RequestError(m.name("role"), "'\(role)' is not supported (system, developer, user, assistant)")
                }
                messages.append(make(try Self.content(m)))
            }
            prompt = .chat(messages)
        } else {
            guard let value = f.value("prompt") else { throw RequestError("prompt", "is required") }
            let text: String
            switch value {
            case .string(let s): text = s
            case .array(let list):
                guard list.count == 1, case .string(let s) = list[0] else {
                    throw RequestError("prompt", "expected a string or a list of one string")
                }
                text = s
            default: throw RequestError("prompt", "expected a string, got \(value.typeName)")
            }
            guard !text.isEmpty else { throw RequestError("prompt", "must not be empty") }
            prompt = .text(text)
        }
        model = try f.string("model")
        if let n = try f.int("n", Int64.min...Int64.max), n != 1 { throw RequestError("n", "only one choice per request is supported, got \(n)") }
        let maxTokens = try f.int("max_tokens", 1...1_000_000_000)
        let maxCompletionTokens = try f.int("max_completion_tokens", 1...1_000_000_000)
        self.maxTokens = (maxCompletionTokens ?? maxTokens).map { Int($0) }
        var p = SamplingParameters()
        p.temperature = try f.number("temperature", "[0, 2]") { (0...2).contains($0) }.map(Float.init) ?? p.temperature
        p.topP = try f.number("top_p", "(0, 1]") { $0 > 0 && $0 <= 1 }.map(Float.init) ?? p.topP
        p.topK = try f.int("top_k", 0...1_000_000).map { Int($0) } ?? p.topK
        p.minP = try f.number("min_p", "[0, 1)") { $0 >= 0 && $0 < 1 }.map(Float.init) ?? p.minP
        p.frequencyPenalty = try f.number("frequency_penalty", "[-2, 2]") { (-2...2).contains($0) }.map(Float.init) ?? p.frequencyPenalty
        p.presencePenalty = try f.number("presence_penalty", "[-2, 2]") { (-2...2).contains($0) }.map(Float.init) ?? p.presencePenalty
        p.repetitionPenalty = try f.number("repeat_penalty", "(0, 100]") { $0 > 0 && $0 <= 100 }.map(Float.init) ?? p.repetitionPenalty
        p.seed = try f.int("seed", Int64.min...Int64.max).map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max)
        sampling = p
        stop = try Self.stops(f)
        stream = try f.bool("stream") ?? false
        includeUsage = try f.object("stream_options")?.bool("include_usage") ?? false
    }

    /// A string, or a list of `{"type": "text", "text": ...}` parts.
    private static func content(_ m: JSONFields) throws(RequestError) -> String {
        guard let value = m.value("content") else { throw RequestError(m.name("content"), "is required") }
        switch value {
        case .string(let s): return s
        case .array(let parts):
            var text = ""
            for i in parts.indices {
                let part = try JSONFields(parts[i], path: m.name("content") + "[\(i)]")
                if let type = try part.string("type"), type != "text" {
                    throw RequestError(part.name("type"), "only text parts are supported, got '\(type)'")
                }
                guard let t = try part.string("text") else { throw RequestError(part.name("text"), "is required") }
                text += t
            }
            return text
        default:
            throw RequestError(m.name("content"), "expected a string or a list of text parts, got \(value.typeName)")
        }
    }

    /// `"stop": "x"` or `"stop": ["x", "y"]`, within `StopStrings`' limits.
    private static func stops(_ f: JSONFields) throws(RequestError) -> [String] {
        guard let value = f.value("stop") else { return [] }
        let list: [String]
        switch value {
        case .string(let s): list = [s]
        case .array(let items):
            var strings: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else { throw RequestError("stop[\(i)]", "expected a string, got \(item.typeName)") }
                strings.append(s)
            }
            list = strings
        default: throw RequestError("stop", "expected a string or a list of strings, got \(value.typeName)")
        }
        do {
            return try StopStrings(list).strings
        } catch {
            // The reason names the entry already ("stop[2] has ...").
            throw RequestError("", "\(error)".hasPrefix("stop") ? "\(error)" : "stop: \(error)")
        }
    }
}
