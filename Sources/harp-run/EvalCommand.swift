import Foundation
import HARP
import HARPCommandLine

/// `harp-run eval`: tasks (multiple choice by log-likelihood, greedy generation) and the KL
/// divergence against a reference model, on one loaded model.
enum EvalCommand {
    static let spec = CommandSpec(
        name: "eval", summary: "score a model on tasks (HellaSwag, ARC, GSM8K, …) and its KL divergence to a reference",
        usage: "eval [-m MODEL] --task T[=FILE] [--task …] [--limit N] [--shots K] [--json] | --kl-base FILE | --kl FILE",
        options: CommonOptions.all + [
            OptionSpec(names: ["--task"], value: "T[=FILE]", help: "task to run, repeatable: \(EvalTask.allCases.map(\.rawValue).joined(separator: ", ")); =FILE reads another file of the same layout (MMLU: a directory)"),
            OptionSpec(names: ["--limit"], value: "N", help: "score the first N items in file order (MMLU: per subject; GSM8K/NQ: after the shots)"),
            OptionSpec(names: ["--shots"], value: "K", help: "few-shot examples for mmlu, gsm8k, nq_open (default 5)"),
            OptionSpec(names: ["--data"], value: "DIR", help: "data directory of the default task files (default Benchmarks/data/eval)"),
            OptionSpec(names: ["--parallel"], value: "N", help: "sequences generated at once for gsm8k / nq_open (default 8)"),
            OptionSpec(names: ["--kl-base"], value: "FILE", help: "write this model's top-k token distributions over the text (-f) to FILE"),
            OptionSpec(names: ["--kl"], value: "FILE", help: "KL divergence of this model against a --kl-base FILE"),
            OptionSpec(names: ["-f", "--file"], value: "FILE", help: "text for --kl-base (default Benchmarks/data/wikitext-2-raw/wiki.test.raw)"),
            OptionSpec(names: ["-c", "--ctx-size"], value: "N", help: "window length for --kl-base (default 512)"),
            OptionSpec(names: ["--chunks"], value: "K", help: "windows for --kl-base (default 40)"),
            OptionSpec(names: ["--top-k"], value: "K", help: "log-probabilities stored per position by --kl-base (default: the whole vocabulary, exact; fewer give a lower bound of the KL)"),
            OptionSpec(names: ["--json"], value: nil, help: "print the results as JSON instead of a table"),
            OptionSpec(names: ["--verbose"], value: nil, help: "print every generated reply on stderr"),
        ])

    static func run(_ args: ParsedArguments) throws {
        try args.noPositionals()
        let tasks = try args.strings("--task").map(parseTask)
        let klBase = args.string("--kl-base"), kl = args.string("--kl")
        guard !tasks.isEmpty || klBase != nil || kl != nil else {
            throw HARPError.invalidArgument("nothing to do: give --task T, --kl-base FILE or --kl FILE (see harp-run eval --help)")
        }
        if let klBase, let kl, klBase == kl { throw HARPError.invalidArgument("--kl-base and --kl name the same file '\(kl)'") }
        let limit = try args.optionalInt("--limit", range: 1...10_000_000)
        let shots = try args.optionalInt("--shots", range: 0...64)
        let parallel = try args.int("--parallel", default: 8, range: 1...256)
        let dataDir = args.string("--data") ?? "Benchmarks/data/eval"
        // Resolve every file before loading the model, so a typo fails at once.
        let resolved = try tasks.map { task, file -> (EvalTask, String) in
            let path = file ?? dataDir + "/" + task.defaultPath
            guard FileManager.default.fileExists(atPath: path) else {
                throw HARPError.io(path: path, reason: file == nil ? "no such file (task \(task.rawValue); pass --data DIR or --task \(task.rawValue)=FILE)" : "no such file")
            }
            return (task, path)
        }
        if let kl, !FileManager.default.fileExists(atPath: kl) { throw HARPError.io(path: kl, reason: "no such file (write it with --kl-base)") }
        if shots != nil, let other = resolved.first(where: { $0.0.defaultShots == nil }) {
            Output.status("note: --shots does not apply to \(other.0.rawValue) (zero-shot)\n")
        }

        let loaded = try LoadedModel(args)
        let file = try GGUFFile(path: args.string("--model") ?? CommonOptions.defaultModelPath)
        let evaluator = Evaluator(transformer: loaded.transformer, tokenizer: loaded.tokenizer,
                                  chatTemplate: ChatTemplate.load(from: file, tokenizer: loaded.tokenizer),
                                  threads: try args.optionalInt("--threads", range: 1...256), parallel: parallel)
        if args.flag("--verbose") {
            evaluator.onReply = { task, i, reply in Output.status("\(task) #\(i): \(reply.debugDescription)\n") }
        }
        var results: [TaskResult] = []

        if let klBase {
            let textPath = args.string("--file") ?? "Benchmarks/data/wikitext-2-raw/wiki.test.raw"
            guard let data = FileManager.default.contents(atPath: textPath) else { throw HARPError.io(path: textPath, reason: "cannot read file") }
            var text = String(decoding: data, as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }  // as the perplexity command
            let context = try args.int("--ctx-size", default: 512, range: 16...loaded.model.config.contextLength)
            let chunks = try args.int("--chunks", default: 40, range: 1...1_000_000)
            let topK = try args.int("--top-k", default: loaded.model.config.vocabularySize, range: 1...loaded.model.config.vocabularySize)
            let started = Date()
            let base = try KLBase.compute(loaded.transformer, text: text, tokenizer: loaded.tokenizer, context: context,
                                          maxChunks: chunks, topK: topK) { done, total in Output.status("\rkl-base: \(done)/\(total) windows") }
            Output.status("\n")
            try base.write(to: klBase)
            Output.status("wrote \(klBase): \(base.windows.count) windows of \(context) tokens, top-\(topK)\n")
            results.append(TaskResult(task: "kl_base", metrics: [], items: base.targetLogProbs.count, seconds: Date().timeIntervalSince(started)))
        }
        if let kl {
            let base = try KLBase(path: kl)
            results.append(try KLDivergence.evaluate(loaded.transformer, base: base) { done, total in Output.status("\rkl: \(done)/\(total) windows") })
            Output.status("\n")
        }

        let box = ResultBox()
        let finished = DispatchSemaphore(value: 0)
        let job = UncheckedJob(evaluator: evaluator, tasks: resolved, limit: limit, shots: shots)
        Task {
            do {
                for (task, path) in job.tasks {
                    Output.status("\(task.rawValue): \(path)\n")
                    let result = try await job.evaluator.run(task, path: path, limit: job.limit, shots: job.shots) { done, total in
                        Output.status("\r\(task.rawValue): \(done)/\(total)")
                    }
                    Output.status("\n")
                    box.append(result)
                }
            } catch {
                box.fail(error)
            }
            finished.signal()
        }
        finished.wait()
        if let error = box.error { throw error }
        results += box.results

        if args.flag("--json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print(table(results))
        }
    }

    static func parseTask(_ text: String) throws -> (EvalTask, String?) {
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        guard let name = parts.first, let task = EvalTask(rawValue: name.lowercased()) else {
            throw HARPError.invalidArgument("option --task: unknown task '\(text)' (one of \(EvalTask.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        if parts.count == 2 && parts[1].isEmpty { throw HARPError.invalidArgument("option --task: '\(text)' names no file after '='") }
        return (task, parts.count == 2 ? parts[1] : nil)
    }

    /// task | metric | value | stderr | items | seconds
    static func table(_ results: [TaskResult]) -> String {
        var lines = ["| task | metric | value | stderr | items | seconds |", "| --- | --- | ---: | ---: | ---: | ---: |"]
        for r in results {
            let metrics = r.metrics.isEmpty ? [Metric("-", .nan)] : r.metrics
            for m in metrics {
                let value = m.value.isNaN ? "-" : String(format: "%.6f", m.value)
                let se = m.standardError.map { String(format: "%.6f", $0) } ?? "-"
                lines.append("| \(r.task) | \(m.name) | \(value) | \(se) | \(r.items) | \(String(format: "%.1f", r.seconds)) |")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The evaluator handed to the task that drives it (used by that task alone while the command waits).
private struct UncheckedJob: @unchecked Sendable {
    let evaluator: Evaluator
    let tasks: [(EvalTask, String)]
    let limit: Int?
    let shots: Int?
}

private final class ResultBox: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var stored: [TaskResult] = []
    private var failure: (any Error)?
    func append(_ r: TaskResult) { lock.lock(); stored.append(r); lock.unlock() }
    func fail(_ e: any Error) { lock.lock(); failure = e; lock.unlock() }
    var results: [TaskResult] { lock.lock(); defer { lock.unlock() }; return stored }
    var error: (any Error)? { lock.lock(); defer { lock.unlock() }; return failure }
}
