/// A request accepted by the engine: its prompt already tokenized and checked.
struct QueuedRequest: Sendable {
    let id: UInt64
    let promptTokens: [Int32]
    let maxTokens: Int
    let sampling: SamplingParameters
    let stops: StopStrings
    let stopAtEndOfGeneration: Bool
    let continuation: AsyncThrowingStream<GenerationEvent, any Error>.Continuation
}

/// Continuous batching over one transformer and one multi-sequence KV cache. Each `step` is one
/// forward pass carrying the next token of every decoding sequence plus chunks of waiting prompts;
/// sequences join when a cache slot is free and leave when they finish or are cancelled.
/// A slot keeps its cached tokens after its request ends, so a later request that starts with the
/// same tokens (the next turn of a chat) only computes what is new.
final class BatchScheduler: @unchecked Sendable {  // handed to the engine's worker thread once, used only there
    private let transformer: Transformer
    private let cache: KVCache
    private let tokenizer: any Tokenizer
    private let stepTokenBudget: Int
    private var slots: [Slot]
    private var waiting: [QueuedRequest] = []
    private var clock: UInt64 = 0  // counts steps; orders slots by last use

    private struct Slot {
        /// Tokens whose keys and values are in this slot's cache rows, in position order.
        var cachedTokens: [Int32] = []
        var lastUse: UInt64 = 0
        var sequence: RunningSequence?
    }

    private struct RunningSequence {
        let request: QueuedRequest
        var decoder: SequenceDecoder
        let reusedPromptTokens: Int
        /// The last sampled token, fed in the next step (nil while the prompt is being processed).
        var pendingToken: Int32?
        let admitted = ContinuousClock.now
        var firstToken: ContinuousClock.Instant?
    }

    init(transformer: Transformer, cache: KVCache, tokenizer: any Tokenizer, stepTokenBudget: Int) {
        self.transformer = transformer
        self.cache = cache
        self.tokenizer = tokenizer
        self.stepTokenBudget = stepTokenBudget
        slots = Array(repeating: Slot(), count: cache.sequenceCount)
    }

    var hasWork: Bool { !waiting.isEmpty || slots.contains { $0.sequence != nil } }

    func enqueue(_ requests: [QueuedRequest]) { waiting.append(contentsOf: requests) }

    /// Drops cancelled requests, waiting or running; their consumers are gone.
    func cancel(_ ids: Set<UInt64>) {
        guard !ids.isEmpty else { return }
        waiting.removeAll { ids.contains($0.id) }
        for i in slots.indices where slots[i].sequence.map({ ids.contains($0.request.id) }) ?? false {
            slots[i].sequence?.request.continuation.finish()
            slots[i].sequence = nil
        }
    }

    /// Ends every request with `error` (engine shutdown).
    func failAll(_ error: any Error) {
        for request in waiting { request.continuation.finish(throwing: error) }
        waiting.removeAll()
        for i in slots.indices {
            slots[i].sequence?.request.continuation.finish(throwing: error)
            slots[i].sequence = nil
        }
    }

    var statistics: EngineStatistics {
        EngineStatistics(cachedTokensPerSlot: slots.map(\.cachedTokens.count),
                         activeSequences: slots.filter { $0.sequence != nil }.count, waitingRequests: waiting.count,
                         contextLength: cache.contextLength, kvCacheBytes: cache.byteCount, kvBytesPerToken: cache.bytesPerToken)
    }

    /// One forward pass over everything that is ready.
    func step() {
        clock += 1
        admitWaiting()
        var batch = Batch()
        var fedSlots: [(slot: Int, tokens: ArraySlice<Int32>)] = []
        var logitSlots: [Int] = []
        // Decoding sequences first: each contributes one token.
        for i in slots.indices {
            guard let token = slots[i].sequence?.pendingToken else { continue }
            batch.append(token: token, position: slots[i].cachedTokens.count, sequence: i, wantLogits: true)
            fedSlots.append((i, [token]))
            logitSlots.append(i)
        }
        // Prompts fill the rest of the budget, oldest request first.
        let prefilling = slots.indices.filter { slots[$0].sequence != nil && slots[$0].sequence?.pendingToken == nil }
            .sorted { (slots[$0].sequence?.request.id ?? 0) < (slots[$1].sequence?.request.id ?? 0) }
        for i in prefilling where batch.count < stepTokenBudget {
            guard let prompt = slots[i].sequence?.request.promptTokens else { continue }
            let start = slots[i].cachedTokens.count
            let end = min(prompt.count, start + stepTokenBudget - batch.count)
            for position in start..<end {
                batch.append(token: prompt[position], position: position, sequence: i, wantLogits: position == prompt.count - 1)
            }
            fedSlots.append((i, prompt[start..<end]))
            if end == prompt.count { logitSlots.append(i) }
        }
        guard batch.count > 0 else { return }

        let logits: [Float]
        do {
            logits = try transformer.forward(batch, cache: cache)
        } catch {
            // The cache rows of these sequences may be half written: forget them.
            for (i, _) in fedSlots {
                slots[i].sequence?.request.continuation.finish(throwing: GenerationError.computeFailed("\(error)"))
                slots[i].sequence = nil
                slots[i].cachedTokens.removeAll()
            }
            return
        }
        for (i, tokens) in fedSlots {
            slots[i].cachedTokens.append(contentsOf: tokens)
            slots[i].lastUse = clock
        }
        let vocab = transformer.config.vocabularySize
        for (row, i) in logitSlots.enumerated() {
            accept(logits[(row * vocab)..<((row + 1) * vocab)], slot: i)
        }
    }

    /// Starts waiting requests in free slots, each in the slot whose cached tokens share the
    /// longest prefix with its prompt (least recently used on ties).
    private func admitWaiting() {
        while !waiting.isEmpty {
            let free = slots.indices.filter { slots[$0].sequence == nil }
            guard !free.isEmpty else { return }
            let request = waiting.removeFirst()
            let prompt = request.promptTokens
            func sharedPrefix(_ i: Int) -> Int { zip(slots[i].cachedTokens, prompt).prefix { $0 == $1 }.count }
            guard let best = free.max(by: { a, b in
                let pa = sharedPrefix(a), pb = sharedPrefix(b)
                return pa != pb ? pa < pb : slots[a].lastUse > slots[b].lastUse
            }) else { return }
            // At least the last prompt token is recomputed: its logits start the generation.
            let reused = min(sharedPrefix(best), prompt.count - 1)
            slots[best].cachedTokens.removeSubrange(reused...)
            slots[best].sequence = RunningSequence(request: request, decoder: SequenceDecoder(request: request, tokenizer: tokenizer),
                                                   reusedPromptTokens: reused)
        }
    }

    /// Samples the next token of the sequence in slot `i`, delivers it, and decides whether it goes on.
    private func accept(_ logits: ArraySlice<Float>, slot i: Int) {
        guard var sequence = slots[i].sequence else { return }
        // The sampled token is fed at position cachedTokens.count, which must exist.
        let step = sequence.decoder.next(logits, contextLeft: slots[i].cachedTokens.count < cache.contextLength)
        let now = ContinuousClock.now
        if sequence.firstToken == nil { sequence.firstToken = now }
        if let text = step.text { sequence.request.continuation.yield(.token(id: step.token, text: text)) }
        guard let finish = step.finish else {
            sequence.pendingToken = step.token
            slots[i].sequence = sequence
            return
        }
        let first = sequence.firstToken ?? now
        let summary = GenerationSummary(
            finishReason: finish, promptTokens: sequence.request.promptTokens.count,
            reusedPromptTokens: sequence.reusedPromptTokens,
            generatedTokens: sequence.decoder.generatedTokens,
            stopSequence: sequence.decoder.matchedStop,
            promptSeconds: seconds(first - sequence.admitted), generationSeconds: seconds(now - first))
        sequence.request.continuation.yield(.finished(summary))
        sequence.request.continuation.finish()
        slots[i].sequence = nil
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}
