import Foundation
import HARP
import HARPCommandLine

enum TokenizeCommand {
    static let spec = CommandSpec(
        name: "tokenize", summary: "print the token ids of a text",
        usage: "tokenize [-m MODEL] [--special] TEXT",
        options: [CommonOptions.model,
                  OptionSpec(names: ["--special"], value: nil, help: "parse special tokens such as <|im_start|>"),
                  OptionSpec(names: ["--bos"], value: nil, help: "prepend BOS when the model asks for it")])

    static func run(_ args: ParsedArguments) throws {
        let text = try args.onePositional("TEXT")
        let path = args.string("--model") ?? CommonOptions.defaultModelPath
        let tokenizer = try TokenizerLoader.load(from: GGUFFile(path: path))
        var ids = tokenizer.encode(text, parseSpecial: args.flag("--special"))
        if args.flag("--bos"), tokenizer.addBOS, let bos = tokenizer.bosID { ids.insert(bos, at: 0) }
        print(ids.map(String.init).joined(separator: " "))
    }
}

/// Sampling options shared by generate and chat.
enum SamplingOptions {
    static let all = [
        OptionSpec(names: ["--temp"], value: "T", help: "temperature; 0 = greedy (default 0.8)"),
        OptionSpec(names: ["--top-k"], value: "K", help: "keep the K most likely tokens, 0 = all (default 40)"),
        OptionSpec(names: ["--top-p"], value: "P", help: "nucleus sampling threshold (default 0.95)"),
        OptionSpec(names: ["--min-p"], value: "P", help: "drop tokens below P × the top probability (default 0.05)"),
        OptionSpec(names: ["--repeat-penalty"], value: "X", help: "penalty for recently seen tokens, 1 = off (default 1)"),
        OptionSpec(names: ["--frequency-penalty"], value: "X", help: "subtract X × count of recent occurrences (default 0)"),
        OptionSpec(names: ["--presence-penalty"], value: "X", help: "subtract X once for recently seen tokens (default 0)"),
        OptionSpec(names: ["--repeat-last-n"], value: "N", help: "how many recent tokens the penalties consider (default 64)"),
        OptionSpec(names: ["--seed"], value: "S", help: "random seed (default: from the clock)"),
    ]

    static func parameters(_ args: ParsedArguments) throws -> SamplingParameters {
        var p = SamplingParameters()
        p.temperature = try args.float("--temp", default: p.temperature, range: 0...100)
        p.topK = try args.int("--top-k", default: p.topK, range: 0...1_000_000)
        p.topP = try args.float("--top-p", default: p.topP, range: 0.000_001...1)
        p.minP = try args.float("--min-p", default: p.minP, range: 0...0.999)
        p.repetitionPenalty = try args.float("--repeat-penalty", default: p.repetitionPenalty, range: 0.01...100)
        p.frequencyPenalty = try args.float("--frequency-penalty", default: 0, range: -100...100)
        p.presencePenalty = try args.float("--presence-penalty", default: 0, range: -100...100)
        p.penaltyWindow = try args.int("--repeat-last-n", default: p.penaltyWindow, range: 0...1_000_000)
        if let seed = args.string("--seed") {
            guard let s = UInt64(seed) else { throw HARPError.invalidArgument("option --seed: expected a non-negative integer, got '\(seed)'") }
            p.seed = s
        } else {
            p.seed = UInt64(Date().timeIntervalSince1970 * 1000)
        }
        try p.validate()
        return p
    }
}

enum GenerateCommand {
    static let spec = CommandSpec(
        name: "generate", summary: "continue a prompt",
        usage: "generate [-m MODEL] -p TEXT [-n N] [--temp T] [--seed S] [--stop TEXT] [--ids]",
        options: CommonOptions.all + [
            OptionSpec(names: ["-p", "--prompt"], value: "TEXT", help: "the prompt (special tokens are parsed)"),
            OptionSpec(names: ["-n", "--n-predict"], value: "N", help: "tokens to generate (default 64)"),
            OptionSpec(names: ["-c", "--ctx-size"], value: "N", help: "context length (default: min(model, 4096))"),
            OptionSpec(names: ["--kv-type"], value: "TYPE", help: "KV cache element type: f16 (default) or f32"),
            OptionSpec(names: ["--stop"], value: "TEXT", help: "end generation before the first TEXT (not printed)"),
            OptionSpec(names: ["--ids"], value: nil, help: "also print the generated token ids on a last line"),
            OptionSpec(names: ["--ignore-eos"], value: nil, help: "keep generating after end-of-generation tokens"),
        ] + SamplingOptions.all)

    static func run(_ args: ParsedArguments) throws {
        try args.noPositionals()
        guard let prompt = args.string("--prompt") else { throw HARPError.invalidArgument("missing -p TEXT (the prompt)") }
        let maxTokens = try args.int("--n-predict", default: 64, range: 1...1_000_000)
        let sampling = try SamplingOptions.parameters(args)
        let kvType: KVCacheType = try args.choice("--kv-type", default: .f16)
        let stop = try args.string("--stop").map { text -> [String] in
            do { return try StopStrings([text]).strings } catch { throw HARPError.invalidArgument("option --stop: \(error)") }
        } ?? []
        let loaded = try LoadedModel(args)
        let context = try args.int("--ctx-size", default: min(loaded.model.config.contextLength, 4096), range: 2...1_048_576)
        let tokenizer = loaded.tokenizer
        let engine = try Engine(transformer: loaded.transformer, tokenizer: tokenizer,
                                chatTemplate: ChatTemplate.recognise(templateText: nil, tokenizer: tokenizer),
                                configuration: EngineConfiguration(maxConcurrentSequences: 1, contextLength: context,
                                                                   kvType: kvType, stepTokenBudget: 512))
        let promptIDs = try engine.promptTokens(.text(prompt))
        guard !promptIDs.isEmpty else { throw HARPError.invalidArgument("the prompt is empty") }
        guard promptIDs.count < context else {
            throw HARPError.invalidRequest("the prompt has \(promptIDs.count) tokens, which does not fit the context of \(context) (raise -c)")
        }
        let request = GenerationRequest(prompt: .tokens(promptIDs), maxTokens: maxTokens, sampling: sampling, stop: stop,
                                        stopAtEndOfGeneration: !args.flag("--ignore-eos"))
        let ids = TokenLog()
        let outcome = BlockingGeneration.run(engine, request) { id, text in
            ids.append(id)
            Output.write(text)
        }
        Output.write("\n")
        if let error = outcome.error { throw error }
        if args.flag("--ids") { Output.write(ids.all.map(String.init).joined(separator: " ") + "\n") }
        guard let s = outcome.summary else { return }
        Output.status(String(format: "prompt: %d tokens in %.2f s (%.1f t/s); generated: %d tokens in %.2f s (%.1f t/s)\n",
                             s.promptTokens, s.promptSeconds, Double(s.promptTokens) / max(s.promptSeconds, 1e-9),
                             s.generatedTokens, s.generationSeconds, s.generationTokensPerSecond))
        if s.finishReason == .contextFull { Output.status("note: generation stopped at the end of the context (\(context) tokens)\n") }
    }

    /// The delivered token ids, appended from the generating task.
    private final class TokenLog: @unchecked Sendable {  // guarded by `lock`
        private let lock = NSLock()
        private var ids: [Int32] = []
        func append(_ id: Int32) { lock.withLock { ids.append(id) } }
        var all: [Int32] { lock.withLock { ids } }
    }
}

enum PerplexityCommand {
    static let spec = CommandSpec(
        name: "perplexity", summary: "perplexity of a text file (llama.cpp's protocol)",
        usage: "perplexity [-m MODEL] -f FILE [-c 512] [--chunks K]",
        options: CommonOptions.all + [
            OptionSpec(names: ["-f", "--file"], value: "FILE", help: "text file (e.g. data/wikitext-2-raw/wiki.test.raw)"),
            OptionSpec(names: ["-c", "--ctx-size"], value: "N", help: "window length (default 512)"),
            OptionSpec(names: ["--chunks"], value: "K", help: "evaluate at most K windows (default: all)"),
        ])

    static func run(_ args: ParsedArguments) throws {
        try args.noPositionals()
        guard let path = args.string("--file") else { throw HARPError.invalidArgument("missing -f FILE") }
        let context = try args.int("--ctx-size", default: 512, range: 16...1_048_576)
        let chunks = try args.optionalInt("--chunks", range: 1...1_000_000)
        guard let data = FileManager.default.contents(atPath: path) else { throw HARPError.io(path: path, reason: "cannot read file") }
        var text = String(decoding: data, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }  // as llama.cpp's reference run did
        let loaded = try LoadedModel(args)
        guard context <= loaded.model.config.contextLength else {
            throw HARPError.invalidArgument("option -c: \(context) exceeds the model's context length \(loaded.model.config.contextLength)")
        }
        let started = Date()
        Output.status("perplexity: windows of \(context) tokens\n")
        let result = try Perplexity.evaluate(loaded.transformer, text: text, tokenizer: loaded.tokenizer, context: context,
                                             maxChunks: chunks) { done, total, ppl in
            Output.status(String(format: "[%d/%d] %.4f\n", done, total, ppl))
        }
        Output.status(String(format: "%d chunks, %d scored tokens, %.1f s\n", result.chunks, result.scoredTokens, Date().timeIntervalSince(started)))
        print(String(format: "PPL = %.4f +/- %.5f", result.perplexity, result.uncertainty))
    }
}
