import Foundation

/// A loaded model serving many concurrent generations. One worker thread owns the forward pass
/// and the KV cache and runs the continuous-batching scheduler; `generate` may be called from any
/// task or thread. Cancelling the consuming task (or dropping the stream) removes the sequence
/// before the next forward pass.
///
/// ```swift
/// let engine = try Engine(modelPath: "models/SmolLM2-135M-Instruct.Q4_1.gguf")
/// for try await event in engine.generate(GenerationRequest(prompt: .chat([.user("Hi!")]))) {
///     if case .token(_, let text) = event { print(text, terminator: "") }
/// }
/// ```
public final class Engine: Sendable {
    public let model: Model
    public let tokenizer: any Tokenizer
    public let chatTemplate: ChatTemplate
    public let configuration: EngineConfiguration
    private let inbox: EngineInbox

    /// Takes over `transformer` (and its compute pool): nothing else may run it while the engine lives.
    public init(transformer: Transformer, tokenizer: any Tokenizer, chatTemplate: ChatTemplate,
                configuration: EngineConfiguration = EngineConfiguration()) throws {
        try configuration.validate()
        model = transformer.model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.configuration = configuration
        let cache = try KVCache(config: model.config, sequences: configuration.maxConcurrentSequences,
                                contextLength: configuration.contextLength, type: configuration.kvType)
        let scheduler = BatchScheduler(transformer: transformer, cache: cache, tokenizer: tokenizer,
                                       stepTokenBudget: configuration.stepTokenBudget)
        let inbox = EngineInbox(statistics: scheduler.statistics)
        self.inbox = inbox
        let worker = Thread { EngineInbox.runWorker(inbox, scheduler) }
        worker.name = "harp-engine"
        worker.start()
    }

    /// An engine with its own compute pool of `configuration.threads` threads.
    public convenience init(model: Model, tokenizer: any Tokenizer, chatTemplate: ChatTemplate,
                            configuration: EngineConfiguration = EngineConfiguration()) throws {
        try self.init(transformer: Transformer(model: model, pool: ComputePool(threads: configuration.threads)),
                      tokenizer: tokenizer, chatTemplate: chatTemplate, configuration: configuration)
    }

    /// Loads a GGUF model, its tokenizer and its chat template.
    public convenience init(modelPath: String, weights: WeightFormat = .native,
                            configuration: EngineConfiguration = EngineConfiguration()) throws {
        let file = try GGUFFile(path: modelPath)
        let model = try Model(file: file, weights: weights)
        let tokenizer = try TokenizerLoader.load(from: file)
        try self.init(model: model, tokenizer: tokenizer, chatTemplate: ChatTemplate.load(from: file, tokenizer: tokenizer),
                      configuration: configuration)
    }

    deinit { inbox.stop() }

    /// Ends every pending and running generation with `GenerationError.engineStopped` and stops the worker.
    public func shutdown() { inbox.stop() }

    /// The token ids a prompt is generated from (what counts against the context length).
    public func promptTokens(_ prompt: Prompt) throws -> [Int32] {
        switch prompt {
        case .tokens(let ids):
            return ids
        case .text(let text):
            return withBOS(tokenizer.encode(text, parseSpecial: true))
        case .chat(let messages):
            return withBOS(tokenizer.encode(try chatTemplate.render(messages, addGenerationPrompt: true), parseSpecial: true))
        }
    }

    /// Generates a continuation of the request's prompt. The stream ends after `.finished`, or
    /// with an error (`GenerationError`, `ChatTemplateError`, or `HARPError` for bad sampling values or token ids).
    /// Cancelling the consuming task (or dropping the stream) removes the sequence before the next step.
    public func generate(_ request: GenerationRequest) -> AsyncThrowingStream<GenerationEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        do {
            try request.sampling.validate()
            guard request.maxTokens > 0 else { throw GenerationError.invalidMaxTokens(request.maxTokens) }
            let stops = try StopStrings(request.stop)
            let tokens = try promptTokens(request.prompt)
            guard !tokens.isEmpty else { throw GenerationError.emptyPrompt }
            guard tokens.count < configuration.contextLength else {
                throw GenerationError.promptTooLong(promptTokens: tokens.count, contextLength: configuration.contextLength)
            }
            let vocabulary = model.config.vocabularySize
            if let bad = tokens.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
                throw HARPError.invalidRequest("token id \(bad) is outside the vocabulary (0..<\(vocabulary))")
            }
            let id = inbox.makeID()
            continuation.onTermination = { [inbox] termination in
                if case .cancelled = termination { inbox.cancel(id) }
            }
            let queued = QueuedRequest(id: id, promptTokens: tokens, maxTokens: request.maxTokens, sampling: request.sampling,
                                       stops: stops, stopAtEndOfGeneration: request.stopAtEndOfGeneration,
                                       continuation: continuation)
            guard inbox.submit(queued) else { throw GenerationError.engineStopped }
        } catch {
            continuation.finish(throwing: error)
        }
        return stream
    }

    /// Runs a request to the end and returns its text and summary.
    public func complete(_ request: GenerationRequest) async throws -> (text: String, summary: GenerationSummary) {
        var text = ""
        for try await event in generate(request) {
            switch event {
            case .token(_, let piece): text += piece
            case .finished(let summary): return (text, summary)
            }
        }
        try Task.checkCancellation()
        throw GenerationError.engineStopped
    }

    /// The state after the worker's latest step.
    public var statistics: EngineStatistics { inbox.statistics }

    private func withBOS(_ ids: [Int32]) -> [Int32] {
        guard tokenizer.addBOS, let bos = tokenizer.bosID, ids.first != bos else { return ids }
        return [bos] + ids
    }
}

/// What callers hand to the worker thread: new requests, cancellations, shutdown; and the
/// statistics the worker publishes back.
final class EngineInbox: @unchecked Sendable {  // every stored property is guarded by `condition`
    private let condition = NSCondition()
    private var submitted: [QueuedRequest] = []
    private var cancelled: Set<UInt64> = []
    private var stopped = false
    private var lastID: UInt64 = 0
    private var published: EngineStatistics

    init(statistics: EngineStatistics) { published = statistics }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }

    func makeID() -> UInt64 { locked { lastID += 1; return lastID } }

    /// False when the engine has stopped.
    func submit(_ request: QueuedRequest) -> Bool {
        locked {
            guard !stopped else { return false }
            submitted.append(request)
            condition.signal()
            return true
        }
    }

    func cancel(_ id: UInt64) { locked { cancelled.insert(id); condition.signal() } }

    func stop() { locked { stopped = true; condition.signal() } }

    var statistics: EngineStatistics { locked { published } }

    /// The worker's loop: take what callers sent (sleeping while there is nothing to do), run a step.
    static func runWorker(_ inbox: EngineInbox, _ scheduler: BatchScheduler) {
        while true {
            inbox.condition.lock()
            while !inbox.stopped && inbox.submitted.isEmpty && inbox.cancelled.isEmpty && !scheduler.hasWork {
                inbox.condition.wait()
            }
            let requests = inbox.submitted, cancelled = inbox.cancelled, stopped = inbox.stopped
            inbox.submitted.removeAll()
            inbox.cancelled.removeAll()
            inbox.condition.unlock()

            scheduler.enqueue(requests)
            scheduler.cancel(cancelled)
            if stopped {
                scheduler.failAll(GenerationError.engineStopped)
                return
            }
            if scheduler.hasWork { scheduler.step() }
            let snapshot = scheduler.statistics
            inbox.locked { inbox.published = snapshot }
        }
    }
}
