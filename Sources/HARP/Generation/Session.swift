/// One sequence over a model with its own KV cache: feed tokens, get next-token logits.
/// Synchronous and single-threaded from the caller's side; `Engine` builds the concurrent API on top.
public final class Session {
    public let transformer: Transformer
    public let cache: KVCache
    /// Tokens whose keys and values are in the cache, in order.
    public private(set) var tokens: [Int32] = []
    /// Largest number of tokens sent through one forward pass (prefill chunk).
    public var chunkSize = 512

    public init(transformer: Transformer, contextLength: Int, kvType: KVCacheType = .f16) throws {
        self.transformer = transformer
        cache = try KVCache(config: transformer.config, sequences: 1, contextLength: contextLength, type: kvType)
    }

    public var contextLength: Int { cache.contextLength }
    public var remainingContext: Int { cache.contextLength - tokens.count }

    /// Appends `newTokens` to the sequence and returns the logits after the last one.
    public func feed(_ newTokens: [Int32], observer: ForwardObserver? = nil) throws -> [Float] {
        guard !newTokens.isEmpty else { throw HARPError.invalidRequest("nothing to feed") }
        guard newTokens.count <= remainingContext else {
            throw HARPError.invalidRequest("\(tokens.count + newTokens.count) tokens do not fit the context of \(contextLength) tokens")
        }
        var logits: [Float] = []
        var start = 0
        while start < newTokens.count {
            let end = min(start + chunkSize, newTokens.count)
            let batch = Batch(tokens: Array(newTokens[start..<end]), startPosition: tokens.count)
            logits = try transformer.forward(batch, cache: cache, observer: observer)
            tokens.append(contentsOf: newTokens[start..<end])
            start = end
        }
        return logits
    }

    /// Forgets everything after the first `count` tokens (their cache rows are overwritten later).
    public func truncate(to count: Int) {
        if count < tokens.count { tokens.removeSubrange(max(0, count)...) }
    }

    public func reset() { tokens.removeAll() }
}
