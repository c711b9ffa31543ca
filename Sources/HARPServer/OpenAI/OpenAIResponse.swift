import Foundation
import HARP

/// The response objects of the OpenAI API subset `harp-run serve` speaks (requests: `CompletionBody`).
enum OpenAI {
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
        case .endOfGeneration, .stopSequence: return "stop"
        case .maxTokens, .contextFull: return "length"
        }
    }

    static func encode<T: Encodable>(_ value: T) -> Data {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.withoutEscapingSlashes]
        return (try? e.encode(value)) ?? Data("{}".utf8)
    }
}
