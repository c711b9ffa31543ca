/// The decoding loop of one sequence, shared by every way HARP generates (the engine's batch
/// scheduler, hence `generate`, `chat`, `serve` and the tests): sample a token from its logits,
/// decide whether generation ends (end-of-generation token, token budget, full context, stop
/// string) and which text may be delivered. The caller owns the forward pass.
struct SequenceDecoder: Sendable {
    /// What one sampled token gives.
    struct Step: Sendable {
        var token: Int32
        /// Text to deliver with the token; nil when nothing is delivered (an end-of-generation token
        /// that releases no held-back text).
        var text: String?
        var finish: FinishReason?
    }

    private var sampler: Sampler
    private var text: TokenTextStream
    private var stops: StopMatcher
    let maxTokens: Int
    let stopAtEndOfGeneration: Bool
    /// Tokens sampled so far (an end-of-generation token included).
    private(set) var sampled = 0
    private var endedOnEndOfGeneration = false

    /// Generated tokens as a summary counts them: an ending end-of-generation token is not one.
    var generatedTokens: Int { sampled - (endedOnEndOfGeneration ? 1 : 0) }

    init(request: QueuedRequest, tokenizer: any Tokenizer) {
        sampler = Sampler(request.sampling)
        sampler.observe(request.promptTokens)
        text = TokenTextStream(tokenizer: tokenizer)
        stops = StopMatcher(request.stops)
        maxTokens = request.maxTokens
        stopAtEndOfGeneration = request.stopAtEndOfGeneration
    }

    var matchedStop: String? { stops.matched }

    /// Samples the next token. `contextLeft` is false when no position is left to feed it.
    mutating func next(_ logits: ArraySlice<Float>, contextLeft: Bool) -> Step {
        let token = sampler.sample(logits)
        sampled += 1
        if stopAtEndOfGeneration && text.tokenizer.isEndOfGeneration(token) {
            endedOnEndOfGeneration = true
            let tail = stops.feed(text.finish()) + stops.finish()
            return Step(token: token, text: tail.isEmpty ? nil : tail, finish: stops.isStopped ? .stopSequence : .endOfGeneration)
        }
        var piece = stops.feed(text.append(token))
        if stops.isStopped { return Step(token: token, text: piece, finish: .stopSequence) }
        let finish: FinishReason? = sampled >= maxTokens ? .maxTokens : !contextLeft ? .contextFull : nil
        if finish != nil {
            piece += stops.feed(text.finish())
            piece += stops.finish()
            if stops.isStopped { return Step(token: token, text: piece, finish: .stopSequence) }
        }
        return Step(token: token, text: piece, finish: finish)
    }
}
