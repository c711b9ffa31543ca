import Foundation

/// The tasks `harp-run eval` knows, with their files under the data directory
/// (`Benchmarks/data/eval/`) and their protocols.
public enum EvalTask: String, Sendable, CaseIterable {
    case hellaswag, winogrande, arcEasy = "arc_easy", boolq, openbookqa, mmlu, lambada, gsm8k, nqOpen = "nq_open"

    /// Relative to the data directory.
    public var defaultPath: String {
        switch self {
        case .hellaswag: return "hellaswag/hellaswag_val_full.txt"
        case .winogrande: return "winogrande/winogrande-dev.DERIVED-llamacpp.csv"
        case .arcEasy: return "arc/arc_easy_test.llmfoundry.jsonl"
        case .boolq: return "boolq/boolq_dev.llmfoundry.jsonl"
        case .openbookqa: return "openbookqa/openbookqa_test.llmfoundry.jsonl"
        case .mmlu: return "mmlu"
        case .lambada: return "lambada/lambada_test.jsonl"
        case .gsm8k: return "gsm8k/test.jsonl"
        case .nqOpen: return "nq_open/NQ-open.dev.jsonl"
        }
    }

    /// Few-shot examples by default (taken from the first items of the file for GSM8K and NQ-open,
    /// which are then not scored; from the dev split for MMLU).
    public var defaultShots: Int? {
        switch self {
        case .mmlu, .gsm8k, .nqOpen: return 5
        default: return nil
        }
    }

    public var isGeneration: Bool { self == .gsm8k || self == .nqOpen }
}

/// Runs tasks on one loaded model: log-likelihood tasks on its transformer, generation tasks on an
/// engine made (once, lazily) over a second transformer sharing the same weights.
public final class Evaluator {
    public let model: Model
    public let tokenizer: any Tokenizer
    public let chatTemplate: ChatTemplate
    public let scorer: LogLikelihoodScorer
    public let threads: Int?
    /// Concurrent sequences of the generation engine.
    public let parallel: Int
    /// Called with (task, item index, reply) for every generated reply.
    public var onReply: ((String, Int, String) -> Void)?
    private var engine: Engine?
    private var engineContext = 0

    public init(transformer: Transformer, tokenizer: any Tokenizer, chatTemplate: ChatTemplate, threads: Int?, parallel: Int = 8,
                scoringSequences: Int = 64) {
        model = transformer.model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.threads = threads
        self.parallel = max(1, parallel)
        scorer = LogLikelihoodScorer(transformer: transformer, maxSequences: scoringSequences)
    }

    deinit { engine?.shutdown() }

    /// Runs `task` on the file (or, for MMLU, the directory) at `path`: the first `limit` items in
    /// file order (per subject for MMLU; after the shots for GSM8K and NQ-open).
    public func run(_ task: EvalTask, path: String, limit: Int?, shots: Int?,
                    progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> TaskResult {
        func first<T>(_ items: [T]) -> [T] { limit.map { Array(items.prefix($0)) } ?? items }
        let name = task.rawValue
        switch task {
        case .hellaswag:
            return try MultipleChoice.evaluate(first(EvalData.hellaSwag(path: path)), task: name, scorer: scorer,
                                               tokenizer: tokenizer, rule: .hellaSwag, progress: progress).0
        case .winogrande:
            return try MultipleChoice.evaluate(MultipleChoice.winogrande(first(EvalData.winogrande(path: path))), task: name,
                                               scorer: scorer, tokenizer: tokenizer, rule: .winogrande, normalized: false,
                                               progress: progress).0
        case .arcEasy:
            return try MultipleChoice.evaluate(first(EvalData.queryChoices(path: path, contextSuffix: "\nAnswer:")), task: name,
                                               scorer: scorer, tokenizer: tokenizer, rule: nil, progress: progress).0
        case .boolq:
            return try MultipleChoice.evaluate(first(EvalData.queryChoices(path: path, contextSuffix: "\nAnswer:")), task: name,
                                               scorer: scorer, tokenizer: tokenizer, rule: nil, normalized: false, progress: progress).0
        case .openbookqa:
            return try MultipleChoice.evaluate(first(EvalData.queryChoices(path: path, contextSuffix: "")), task: name,
                                               scorer: scorer, tokenizer: tokenizer, rule: nil, progress: progress).0
        case .mmlu:
            return try MultipleChoice.evaluate(Evaluator.mmluItems(directory: path, limit: limit, shots: shots ?? 5), task: name, scorer: scorer,
                                               tokenizer: tokenizer, rule: nil, normalized: false, progress: progress).0
        case .lambada:
            return try MultipleChoice.lambada(first(EvalData.lambada(path: path)), scorer: scorer, tokenizer: tokenizer, progress: progress)
        case .gsm8k, .nqOpen:
            let all = task == .gsm8k ? try EvalData.gsm8k(path: path) : try EvalData.nqOpen(path: path)
            let k = shots ?? 5
            guard all.count > k else { throw HARPError.invalidArgument("\(path): \(all.count) items, none left after \(k) shots") }
            let items = first(Array(all[k...]))
            let proto = task == .gsm8k ? GenerationTasks.gsm8k : GenerationTasks.nqOpen
            let prompts = items.map { proto.prompt(Array(all[..<k]), $0) }
            let longest = prompts.map { tokenizer.encode($0, parseSpecial: false).count + 1 }.max() ?? 1
            let engine = try generationEngine(context: min(model.config.contextLength, longest + proto.maxTokens + 1))
            let (result, replies) = try await GenerationTasks.evaluate(proto, shots: Array(all[..<k]), items: items, engine: engine,
                                                                       progress: progress)
            for (i, reply) in replies.enumerated() { onReply?(name, k + i, reply.text) }
            return result
        }
    }

    /// MMLU: every subject of `directory/test` (`SUBJECT_test.csv`), with its shots from `directory/dev`.
    static func mmluItems(directory: String, limit: Int?, shots: Int) throws -> [MultipleChoiceItem] {
        let testDir = directory + "/test", devDir = directory + "/dev"
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: testDir) else {
            throw HARPError.io(path: testDir, reason: "cannot list the MMLU test directory (expected DIR/test/SUBJECT_test.csv and DIR/dev/SUBJECT_dev.csv)")
        }
        let subjects = files.filter { $0.hasSuffix("_test.csv") }.map { String($0.dropLast("_test.csv".count)) }.sorted()
        guard !subjects.isEmpty else { throw HARPError.io(path: testDir, reason: "no SUBJECT_test.csv files") }
        var items: [MultipleChoiceItem] = []
        for subject in subjects {
            let test = try EvalData.mmluSubject(path: "\(testDir)/\(subject)_test.csv")
            let dev = shots > 0 ? try EvalData.mmluSubject(path: "\(devDir)/\(subject)_dev.csv") : []
            guard dev.count >= shots else { throw HARPError.io(path: "\(devDir)/\(subject)_dev.csv", reason: "\(dev.count) questions, fewer than \(shots) shots") }
            items += MultipleChoice.mmlu(subject: subject, dev: dev, test: limit.map { Array(test.prefix($0)) } ?? test, shots: shots)
        }
        return items
    }

    private func generationEngine(context: Int) throws -> Engine {
        if let engine, engineContext >= context { return engine }
        engine?.shutdown()
        let transformer = Transformer(model: model, pool: ComputePool(threads: threads))
        let e = try Engine(transformer: transformer, tokenizer: tokenizer, chatTemplate: chatTemplate,
                           configuration: EngineConfiguration(maxConcurrentSequences: parallel, contextLength: max(context, 2),
                                                              stepTokenBudget: max(256, parallel + 1), threads: threads))
        engine = e
        engineContext = context
        return e
    }
}
