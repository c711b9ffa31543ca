import HARP

/// Greedy decoding for tests: `steps` argmax tokens after `prompt`, one session, one token per step.
public func greedyTokens(_ transformer: Transformer, prompt: [Int32], steps: Int,
                         contextLength: Int = 128, kvType: KVCacheType = .f32) throws -> [Int32] {
    let session = try Session(transformer: transformer, contextLength: contextLength, kvType: kvType)
    var logits = try session.feed(prompt)
    var out: [Int32] = []
    for _ in 0..<steps {
        let next = Sampler.argmax(logits)
        out.append(next)
        logits = try session.feed([next])
    }
    return out
}
