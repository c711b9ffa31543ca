/// What to continue: raw text, token ids, or a conversation rendered with the model's chat template.
public enum Prompt: Sendable, Equatable {
    /// Tokenized with special-token parsing; BOS is prepended when the model asks for it.
    case text(String)
    /// Used as given (no BOS added).
    case tokens([Int32])
    /// Rendered with the engine's chat template, ending with the opening of an assistant turn.
    case chat([ChatMessage])
}

/// One generation: a prompt, how many tokens at most, how to pick them, and where to stop.
public struct GenerationRequest: Sendable, Equatable {
    public var prompt: Prompt
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Generation ends at the first of these strings in the generated text (`FinishReason.stopSequence`);
    /// the delivered text stops just before it. At most `StopStrings.maxCount` non-empty strings of
    /// at most `StopStrings.maxBytes` UTF-8 bytes each (otherwise `GenerationError.invalidStop`).
    public var stop: [String]
    /// False: end-of-generation tokens are sampled and delivered like any other (`--ignore-eos`).
    public var stopAtEndOfGeneration: Bool

    public init(prompt: Prompt, maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                stop: [String] = [], stopAtEndOfGeneration: Bool = true) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stop = stop
        self.stopAtEndOfGeneration = stopAtEndOfGeneration
    }
}

/// What a generation stream delivers.
public enum GenerationEvent: Sendable, Equatable {
    /// A generated token and the text it completes. A character split over several tokens appears
    /// with the token that completes it, so the texts concatenate to the full reply. Text that may
    /// be the start of a stop string is held back until it is known not to be (and a stop string
    /// itself is never delivered). End-of-turn tokens are not delivered, except to release text
    /// held back for a stop string that did not come.
    case token(id: Int32, text: String)
    /// The last event of a stream that was not cancelled.
    case finished(GenerationSummary)
}

/// Why generation stopped.
public enum FinishReason: String, Sendable, Equatable {
    /// The model produced an end-of-generation token.
    case endOfGeneration
    /// `maxTokens` tokens were generated.
    case maxTokens
    /// The sequence reached the engine's context length.
    case contextFull
    /// One of the request's stop strings appeared (`GenerationSummary.stopSequence` says which).
    case stopSequence
}

public struct GenerationSummary: Sendable, Equatable {
    public var finishReason: FinishReason
    public var promptTokens: Int
    /// Prompt tokens whose keys and values were already cached from an earlier request (not recomputed).
    public var reusedPromptTokens: Int
    public var generatedTokens: Int
    /// The stop string that ended generation (with `FinishReason.stopSequence`).
    public var stopSequence: String?
    /// From the request's admission to its first generated token.
    public var promptSeconds: Double
    /// From the first generated token to the last.
    public var generationSeconds: Double

    /// Tokens per second of the generation phase (after the first token).
    public var generationTokensPerSecond: Double {
        generationSeconds > 0 ? Double(max(generatedTokens - 1, 0)) / generationSeconds : 0
    }
}

/// Errors a generation stream ends with (besides `HARPError` for invalid sampling values and
/// `ChatTemplateError` for conversations the template cannot express).
public enum GenerationError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyPrompt
    /// The prompt leaves no room to generate in the engine's context.
    case promptTooLong(promptTokens: Int, contextLength: Int)
    case invalidMaxTokens(Int)
    /// The stop strings break a limit of `StopStrings` (the message names the entry, e.g. `stop[2]`).
    case invalidStop(String)
    /// The engine was shut down before the request finished.
    case engineStopped
    /// The forward pass failed (a model or cache error); the sequence was dropped.
    case computeFailed(String)

    public var description: String {
        switch self {
        case .emptyPrompt: return "the prompt is empty"
        case .promptTooLong(let n, let context):
            return "the prompt has \(n) tokens, which leaves no room to generate in a context of \(context) tokens"
        case .invalidMaxTokens(let n): return "maximum token count must be positive, got \(n)"
        case .invalidStop(let reason): return reason
        case .engineStopped: return "the engine has been shut down"
        case .computeFailed(let reason): return "generation failed: \(reason)"
        }
    }
}

/// How an engine is sized.
public struct EngineConfiguration: Sendable, Equatable {
    /// Sequences decoded together (KV cache sequences); further requests wait for a free one.
    public var maxConcurrentSequences: Int = 4
    /// Positions per sequence (prompt + generated tokens).
    public var contextLength: Int = 2048
    public var kvType: KVCacheType = .f16
    /// Most tokens in one forward pass. Each running sequence contributes its next token first;
    /// prompts fill the rest in chunks, so a long prompt never stalls the sequences already decoding.
    public var stepTokenBudget: Int = 256
    /// Compute threads when the engine creates its own pool (nil: all cores).
    public var threads: Int?

    public init(maxConcurrentSequences: Int = 4, contextLength: Int = 2048, kvType: KVCacheType = .f16,
                stepTokenBudget: Int = 256, threads: Int? = nil) {
        self.maxConcurrentSequences = maxConcurrentSequences
        self.contextLength = contextLength
        self.kvType = kvType
        self.stepTokenBudget = stepTokenBudget
        self.threads = threads
    }

    func validate() throws {
        guard maxConcurrentSequences > 0 else {
            throw HARPError.invalidArgument("engine: concurrent sequences must be positive, got \(maxConcurrentSequences)")
        }
        guard contextLength > 1 else { throw HARPError.invalidArgument("engine: context length must be at least 2, got \(contextLength)") }
        guard stepTokenBudget > maxConcurrentSequences else {
            throw HARPError.invalidArgument("engine: step token budget (\(stepTokenBudget)) must exceed the concurrent sequences (\(maxConcurrentSequences))")
        }
    }
}

/// A snapshot of the engine, for status displays.
public struct EngineStatistics: Sendable, Equatable {
    /// Tokens held in the KV cache by each sequence slot (kept after a request ends for prompt reuse).
    public var cachedTokensPerSlot: [Int]
    public var activeSequences: Int
    public var waitingRequests: Int
    public var contextLength: Int
    public var kvCacheBytes: Int
    public var kvBytesPerToken: Int
}
