import Foundation
import HARP

/// The subset of the OpenAI API `harp-run serve` speaks: request bodies, response objects, errors.
enum OpenAI {
    // MARK: Requests

    /// Fields shared by chat and text completions (snake_case in JSON).
    struct SamplingFields: Decodable {
        var model: String?
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        var temperature: Float?
        var topP: Float?
        var topK: Int?
        var minP: Float?
        var frequencyPenalty: Float?
        var presencePenalty: Float?
        var repeatPenalty: Float?
        var seed: Int64?
        var stream: Bool?
        var stop: StopList?
        var n: Int?
        var streamOptions: StreamOptions?
    }

    struct StreamOptions: Decodable {
        var includeUsage: Bool?
    }

    /// `"stop": "x"` or `"stop": ["x", "y"]`.
    struct StopList: Decodable {
        var values: [String]
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            values = try (try? c.decode(String.self)).map { [$0] } ?? c.decode([String].self)
        }
    }

    struct ChatRequest: Decodable {
        var messages: [Message]
        var fields: SamplingFields
        init(from decoder: any Decoder) throws {
            messages = try decoder.container(keyedBy: Key.self).decode([Message].self, forKey: .messages)
            fields = try SamplingFields(from: decoder)
        }
        private enum Key: String, CodingKey { case messages }
    }

    struct CompletionRequest: Decodable {
        var prompt: String
        var fields: SamplingFields
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            if let text = try? c.decode(String.self, forKey: .prompt) {
                prompt = text
            } else {
                let list = try c.decode([String].self, forKey: .prompt)
                guard list.count == 1 else {
                    throw DecodingError.dataCorruptedError(forKey: .prompt, in: c, debugDescription: "only one prompt per request is supported")
                }
                prompt = list[0]
            }
            fields = try SamplingFields(from: decoder)
        }
        private enum Key: String, CodingKey { case prompt }
    }

    /// A message whose content is a string or a list of `{"type": "text", "text": ...}` parts.
    struct Message: Decodable {
        var role: String
        var content: String
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            role = try c.decode(String.self, forKey: .role)
            if let text = try? c.decodeIfPresent(String.self, forKey: .content) {
                content = text
            } else {
                content = try c.decode([Part].self, forKey: .content).map(\.text).joined()
            }
        }
        private enum Key: String, CodingKey { case role, content }
        struct Part: Decodable { var text: String }
    }

    // MARK: Responses

    struct Usage: Encodable {
        var promptTokens: Int
        var completionTokens: Int
        var totalTokens: Int
        init(_ s: GenerationSummary) {
            promptTokens = s.promptTokens
            completionTokens = s.generatedTokens
            totalTokens = s.promptTokens + s.generatedTokens
        }
    }

    struct ChatMessageBody: Encodable {
        var role: String?
        var content: String?
    }

    /// One choice of a chat completion (`message`) or chunk (`delta`), or of a text completion (`text`).
    struct Choice: Encodable {
        var index = 0
        var message: ChatMessageBody?
        var delta: ChatMessageBody?
        var text: String?
        var finishReason: String?

        enum CodingKeys: String, CodingKey { case index, message, delta, text, finishReason, logprobs }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encodeIfPresent(message, forKey: .message)
            try c.encodeIfPresent(delta, forKey: .delta)
            try c.encodeIfPresent(text, forKey: .text)
            try c.encode(finishReason, forKey: .finishReason)  // null while streaming
            try c.encodeNil(forKey: .logprobs)
        }
    }

    struct Completion: Encodable {
        var id: String
        var object: String
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: Usage?
    }

    struct ModelList: Encodable {
        struct Entry: Encodable {
            var id: String
            var object = "model"
            var created: Int
            var ownedBy = "harp"
        }
        var object = "list"
        var data: [Entry]
    }

    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            var message: String
            var type: String
            var code: String?
        }
        var error: Detail
    }

    static func finishReason(_ reason: FinishReason) -> String {
        switch reason {
        case .endOfGeneration: return "stop"
        case .maxTokens, .contextFull: return "length"
        }
    }

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    static func encode<T: Encodable>(_ value: T) -> Data {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.withoutEscapingSlashes]
        return (try? e.encode(value)) ?? Data("{}".utf8)
    }

    /// A readable one-line reason for a body that does not decode.
    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context):
            return context.underlyingError.map { "invalid JSON: \($0.localizedDescription)" } ?? context.debugDescription
        case DecodingError.keyNotFound(let key, let context):
            return "missing field '\(path(context.codingPath + [key]))'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "field '\(path(context.codingPath))': \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

/// Holds back text that may be the start of a stop string, and cuts the output at the first one.
struct StopSequenceFilter {
    let stops: [String]
    private var pending = ""
    private(set) var stopped = false

    init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// The text that is safe to send after `piece` arrives.
    mutating func feed(_ piece: String) -> String {
        guard !stopped else { return "" }
        pending += piece
        if let cut = stops.compactMap({ pending.range(of: $0)?.lowerBound }).min() {
            stopped = true
            defer { pending = "" }
            return String(pending[..<cut])
        }
        // Keep the longest suffix that is a prefix of some stop string.
        let held = stops.map { stop in
            (1..<max(stop.count, 1)).reversed().first { pending.hasSuffix(stop.prefix($0)) } ?? 0
        }.max() ?? 0
        let safe = String(pending.dropLast(held))
        pending = String(pending.suffix(held))
        return safe
    }

    /// What is left at the end of generation.
    mutating func finish() -> String {
        defer { pending = "" }
        return stopped ? "" : pending
    }
}
