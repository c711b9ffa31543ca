/// Tokens of one or more sequences processed in a single forward pass. Row `i` is token
/// `tokens[i]` of cache sequence `sequences[i]` at position `positions[i]`.
public struct Batch: Sendable, Equatable {
    public var tokens: [Int32] = []
    public var positions: [Int] = []
    public var sequences: [Int] = []
    /// Rows whose next-token logits are wanted, in the order they are returned.
    public var logitRows: [Int] = []

    public init() {}

    /// One sequence's tokens at consecutive positions from `start`; logits for the last only,
    /// or for every token with `allLogits`.
    public init(tokens: [Int32], startPosition start: Int, sequence: Int = 0, allLogits: Bool = false) {
        self.tokens = tokens
        positions = Array(start..<(start + tokens.count))
        sequences = Array(repeating: sequence, count: tokens.count)
        logitRows = allLogits ? Array(tokens.indices) : (tokens.isEmpty ? [] : [tokens.count - 1])
    }

    public mutating func append(token: Int32, position: Int, sequence: Int, wantLogits: Bool) {
        if wantLogits { logitRows.append(tokens.count) }
        tokens.append(token)
        positions.append(position)
        sequences.append(sequence)
    }

    public var count: Int { tokens.count }
}
