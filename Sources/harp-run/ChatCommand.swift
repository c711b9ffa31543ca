import Dispatch
import Foundation
import HARP
import HARPCommandLine

/// `harp-run chat`: a multi-turn chat in the terminal over the engine. The engine keeps the
/// conversation's tokens in its KV cache between turns, so each turn computes only what is new.
enum ChatCommand {
    static let spec = CommandSpec(
        name: "chat", summary: "chat with a model in the terminal",
        usage: "chat [-m MODEL] [--system TEXT] [-c N] [-n N] [--temp T] [--seed S] ...",
        options: CommonOptions.all + [
            OptionSpec(names: ["--system"], value: "TEXT", help: "system prompt (default: the template's own, if any)"),
            OptionSpec(names: ["-c", "--ctx-size"], value: "N", help: "context length (default: min(model, 4096))"),
            OptionSpec(names: ["-n", "--n-predict"], value: "N", help: "longest reply in tokens (default: a quarter of the context)"),
            OptionSpec(names: ["--kv-type"], value: "TYPE", help: "KV cache element type: f16 (default) or f32"),
        ] + SamplingOptions.all)

    static let help = "commands: /reset (forget the conversation), /system [TEXT] (show or set the system prompt), /stats; Ctrl-C stops a reply, Ctrl-D exits"

    static func run(_ args: ParsedArguments) throws {
        try args.noPositionals()
        let sampling = try SamplingOptions.parameters(args)
        let kvType: KVCacheType = try args.choice("--kv-type", default: .f16)
        let loaded = try LoadedModel(args)
        let context = try args.int("--ctx-size", default: min(loaded.model.config.contextLength, 4096), range: 16...1_048_576)
        let maxReply = try args.int("--n-predict", default: context / 4, range: 1...(context - 8))
        let template = ChatTemplate.load(from: loaded.model.file, tokenizer: loaded.tokenizer)
        if let notice = template.notice { Output.status("note: \(notice)\n") }
        let engine = try Engine(transformer: loaded.transformer, tokenizer: loaded.tokenizer, chatTemplate: template,
                                configuration: EngineConfiguration(maxConcurrentSequences: 1, contextLength: context,
                                                                   kvType: kvType, stepTokenBudget: 512))
        let chat = ChatLoop(engine: engine, conversation: Conversation(system: args.string("--system")),
                            sampling: sampling, maxReply: maxReply)
        Output.status("chat with \(URL(fileURLWithPath: loaded.model.path).lastPathComponent) (\(template.family.rawValue) format, context \(context) tokens)\n\(help)\n")
        chat.run()
    }
}

/// The read–reply loop. Runs on the main thread; replies stream from a task that Ctrl-C cancels.
final class ChatLoop {
    private let engine: Engine
    private var conversation: Conversation
    private var sampling: SamplingParameters
    private let maxReply: Int
    private let interrupts = InterruptHandler()
    private var lastSummary: GenerationSummary?
    private var totalGenerated = 0

    init(engine: Engine, conversation: Conversation, sampling: SamplingParameters, maxReply: Int) {
        self.engine = engine
        self.conversation = conversation
        self.sampling = sampling
        self.maxReply = maxReply
    }

    func run() {
        while true {
            Output.write("\n> ")
            guard let line = readLine() else {  // Ctrl-D
                Output.write("\n")
                return
            }
            let input = line.trimmingCharacters(in: .whitespaces)
            if input.isEmpty { continue }
            if input.hasPrefix("/") {
                command(input)
            } else {
                reply(to: input)
            }
        }
    }

    private func command(_ input: String) {
        let parts = input.split(separator: " ", maxSplits: 1)
        let argument = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
        switch parts.first {
        case "/reset":
            conversation.removeAllTurns()
            Output.write("[conversation cleared]\n")
        case "/system":
            if argument.isEmpty {
                Output.write("[system prompt: \(conversation.system ?? "(none: the template's default)")]\n")
            } else {
                conversation.system = argument
                Output.write("[system prompt set]\n")
            }
        case "/stats":
            Output.write(statistics() + "\n")
        default:
            Output.write("\(ChatCommand.help)\n")
        }
    }

    private func statistics() -> String {
        let stats = engine.statistics
        let cached = stats.cachedTokensPerSlot.first ?? 0
        var lines = [
            "turns: \(conversation.turns.count), generated tokens: \(totalGenerated)",
            "KV cache: \(cached) of \(stats.contextLength) tokens (\(Format.bytes(cached * stats.kvBytesPerToken)) of \(Format.bytes(stats.kvCacheBytes)))",
        ]
        if let s = lastSummary {
            let computed = s.promptTokens - s.reusedPromptTokens
            lines.append(String(format: "last reply: prompt %d tokens (%d reused from the cache, %d computed, %.1f t/s), reply %d tokens at %.1f t/s",
                                s.promptTokens, s.reusedPromptTokens, computed, Double(computed) / max(s.promptSeconds, 1e-9),
                                s.generatedTokens, s.generationTokensPerSecond))
        }
        return lines.map { "[\($0)]" }.joined(separator: "\n")
    }

    private func reply(to text: String) {
        var candidate = conversation
        candidate.append(.user(text))
        let dropped: Int
        do {
            // Leave room for a reply of maxReply tokens.
            dropped = try candidate.shorten(toFit: engine.configuration.contextLength - maxReply) { try self.engine.promptTokens(.chat($0)).count }
        } catch {
            Output.write("[cannot send this message: \(error)]\n")
            return
        }
        if dropped > 0 { Output.write("[context full: dropped the \(dropped) oldest messages]\n") }
        conversation = candidate

        let request = GenerationRequest(prompt: .chat(conversation.messages), maxTokens: maxReply, sampling: sampling)
        sampling.seed &+= 1  // a fresh draw each turn, still reproducible from --seed
        let outcome = ReplyOutcome()
        let finished = DispatchSemaphore(value: 0)
        let engine = self.engine
        let task = Task {
            do {
                for try await event in engine.generate(request) {
                    switch event {
                    case .token(_, let piece):
                        Output.write(piece)
                        outcome.append(piece)
                    case .finished(let summary):
                        outcome.finish(summary)
                    }
                }
            } catch {
                outcome.fail(error)
            }
            finished.signal()
        }
        interrupts.whileRunning(task) { finished.wait() }

        let result = outcome.result
        conversation.append(.assistant(result.text))  // an interrupted reply stays as far as it got
        if let summary = result.summary {
            lastSummary = summary
            totalGenerated += summary.generatedTokens
            if summary.finishReason == .maxTokens { Output.write("\n[reply cut at \(maxReply) tokens]") }
            if summary.finishReason == .contextFull { Output.write("\n[reply cut: context full]") }
        } else if let error = result.error {
            Output.write("\n[error: \(error)]")
        } else {
            Output.write("\n[stopped]")
        }
        Output.write("\n")
    }
}

/// What a reply task produced, read by the main thread after the task signals.
private final class ReplyOutcome: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var text = ""
    private var summary: GenerationSummary?
    private var error: (any Error)?

    func append(_ piece: String) { lock.withLock { text += piece } }
    func finish(_ s: GenerationSummary) { lock.withLock { summary = s } }
    func fail(_ e: any Error) { lock.withLock { error = e } }
    var result: (text: String, summary: GenerationSummary?, error: (any Error)?) { lock.withLock { (text, summary, error) } }
}

/// Ctrl-C (SIGINT) cancels the running reply instead of ending the process; at the prompt it
/// prints a hint.
final class InterruptHandler: @unchecked Sendable {  // `running` is guarded by `lock`
    private let lock = NSLock()
    private var running: Task<Void, Never>?
    private let source: any DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            if let task = lock.withLock({ running }) {
                task.cancel()
            } else {
                Output.write("\n(Ctrl-D exits)\n> ")
            }
        }
        source.resume()
    }

    deinit { source.cancel() }

    /// Runs `wait` with `task` as the one Ctrl-C cancels.
    func whileRunning(_ task: Task<Void, Never>, _ wait: () -> Void) {
        lock.withLock { running = task }
        wait()
        lock.withLock { running = nil }
    }
}
