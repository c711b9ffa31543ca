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

    static let help = "commands: /reset (forget the conversation), /system [TEXT] (show or set the system prompt), /stats; "
        + "pastes may span lines, Enter sends; Ctrl-C stops a reply, Ctrl-D exits (during a reply: stops it and exits)"

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
    private let input = TerminalInput()
    private var exitRequested = false
    private var lastSummary: GenerationSummary?
    private var totalGenerated = 0

    init(engine: Engine, conversation: Conversation, sampling: SamplingParameters, maxReply: Int) {
        self.engine = engine
        self.conversation = conversation
        self.sampling = sampling
        self.maxReply = maxReply
    }

    func run() {
        defer { input.restore() }
        let restoreOnSignal = [SIGTERM, SIGHUP].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [input] in
                input.restore()
                exit(128 + number)
            }
            source.resume()
            return source
        }
        defer { restoreOnSignal.forEach { $0.cancel() } }
        while !exitRequested {
            Output.write("\n> ")
            interrupts.atPrompt = true
            let line = input.readLine()
            interrupts.atPrompt = false
            guard case .text(let text) = line else {
                if line == .end { Output.write("\n"); return }
                continue  // Ctrl-C: the line is abandoned
            }
            let message = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if message.isEmpty { continue }
            if message.hasPrefix("/") {
                command(message)
            } else {
                reply(to: message)
            }
        }
        Output.write("\n")
    }

    private func command(_ input: String) {
        let name = input.prefix { !$0.isWhitespace }
        let argument = input.dropFirst(name.count).trimmingCharacters(in: .whitespacesAndNewlines)
        switch name {
        case "/reset":
            conversation.removeAllTurns()
            Output.write("[conversation cleared]\n")
        case "/system":
            if argument.isEmpty {
                Output.write("[system prompt: \(conversation.system.map(Self.abbreviated) ?? "(none: the template's default)")]\n")
            } else {
                conversation.system = argument
                Output.write("[system prompt set: \(argument.count) characters]\n")
            }
        case "/stats":
            Output.write(statistics() + "\n")
        default:
            Output.write("\(ChatCommand.help)\n")
        }
    }

    /// Long texts are shown by their start and length.
    static func abbreviated(_ text: String) -> String {
        text.count <= 200 ? text : "\(text.prefix(80))… (\(text.count) characters)"
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
            Output.write("[cannot send this message (\(text.count) characters): \(error)]\n")
            return
        }
        if dropped > 0 { Output.write("[context full: dropped the \(dropped) oldest messages]\n") }
        conversation = candidate

        let request = GenerationRequest(prompt: .chat(conversation.messages), maxTokens: maxReply, sampling: sampling)
        sampling.seed &+= 1  // a fresh draw each turn, still reproducible from --seed
        let reply = ReplyText()
        let outcome = BlockingGeneration.run(engine, request, onToken: { _, piece in
            Output.write(piece)
            reply.append(piece)
        }, poll: { [input, interrupts] in
            switch input.pollDuringReply() {
            case .interrupt: return true
            case .end: exitRequested = true; return true
            case nil: return interrupts.takeInterrupt()
            }
        })
        conversation.append(.assistant(reply.text))  // an interrupted reply stays as far as it got
        let result = outcome
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

/// The reply as it streams, read by the main thread after the generation ends.
private final class ReplyText: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value = ""
    func append(_ piece: String) { lock.withLock { value += piece } }
    var text: String { lock.withLock { value } }
}

/// SIGINT (Ctrl-C when stdin is not a terminal, or `kill -INT`) stops the running reply instead of
/// ending the process; at the prompt it prints a hint. On a terminal the chat reads Ctrl-C itself.
final class InterruptHandler: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var interrupted = false
    private var prompting = false
    private let source: any DispatchSourceSignal

    init() {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            if lock.withLock({ prompting }) {
                Output.write("\n(Ctrl-D exits)\n> ")
            } else {
                lock.withLock { interrupted = true }
            }
        }
        source.resume()
    }

    deinit { source.cancel() }

    var atPrompt: Bool {
        get { lock.withLock { prompting } }
        set { lock.withLock { prompting = newValue; interrupted = false } }
    }

    /// True once after a SIGINT during a reply.
    func takeInterrupt() -> Bool { lock.withLock { defer { interrupted = false }; return interrupted } }
}
