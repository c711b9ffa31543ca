/// A multi-turn chat: an optional system prompt and alternating user/assistant turns, shortened
/// from the oldest turns when it no longer fits the context.
public struct Conversation: Sendable, Equatable {
    public var system: String?
    public private(set) var turns: [ChatMessage] = []

    public init(system: String? = nil) { self.system = system }

    /// What a chat template renders: the system message (if any), then the turns.
    public var messages: [ChatMessage] { (system.map { [ChatMessage.system($0)] } ?? []) + turns }

    public mutating func append(_ message: ChatMessage) { turns.append(message) }

    public mutating func removeAllTurns() { turns.removeAll() }

    /// Drops the oldest user/assistant exchanges until `tokenCount(messages)` is at most `limit`,
    /// always keeping the system prompt and the last turn. Returns how many messages were dropped;
    /// throws `GenerationError.promptTooLong` when even the system prompt and last turn do not fit.
    public mutating func shorten(toFit limit: Int, tokenCount: ([ChatMessage]) throws -> Int) throws -> Int {
        var dropped = 0
        while true {
            let count = try tokenCount(messages)
            if count <= limit { return dropped }
            guard turns.count > 1 else { throw GenerationError.promptTooLong(promptTokens: count, contextLength: limit) }
            // Remove a whole exchange so user and assistant keep alternating.
            let n = turns.count > 2 && turns[0].role == .user && turns[1].role == .assistant ? 2 : 1
            turns.removeFirst(n)
            dropped += n
        }
    }
}
