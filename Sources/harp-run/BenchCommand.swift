import Foundation
import HARP
import HARPCommandLine

/// `harp-run bench`: llama-bench-style prompt-processing and generation speed.
enum BenchCommand {
    static let spec = CommandSpec(
        name: "bench", summary: "measure prompt processing and generation speed",
        usage: "bench [-m MODEL] [-p 512] [-n 128] [-d DEPTH] [-r 5] [-t N] [--parallel N] [--json]",
        options: CommonOptions.all + [
            OptionSpec(names: ["-p", "--n-prompt"], value: "N", help: "prompt tokens for the pp test, 0 = skip (default 512)"),
            OptionSpec(names: ["-n", "--n-gen"], value: "N", help: "generated tokens for the tg test, 0 = skip (default 128)"),
            OptionSpec(names: ["-d", "--depth"], value: "N", help: "tokens already in the context before each test (default 0)"),
            OptionSpec(names: ["-r", "--repetitions"], value: "N", help: "measured repetitions after one warm-up (default 5)"),
            OptionSpec(names: ["--parallel"], value: "N", help: "decode N sequences together in the tg test (default 1)"),
            OptionSpec(names: ["--kv-type"], value: "TYPE", help: "KV cache element type: f16 (default) or f32"),
            OptionSpec(names: ["--json"], value: nil, help: "print results as JSON"),
        ])

    struct Result: Codable {
        var test: String
        var tokensPerSecond: Double
        var stddev: Double
        var samples: [Double]
    }

    struct Report: Codable {
        var model: String
        var weightBytes: Int
        var parameters: Int
        var threads: Int
        var kvCacheBytes: Int
        var kvBytesPerToken: Int
        var peakRSSBytes: Int
        var results: [Result]
    }

    static func run(_ args: ParsedArguments) throws {
        try args.noPositionals()
        let prompt = try args.int("--n-prompt", default: 512, range: 0...1_000_000)
        let generate = try args.int("--n-gen", default: 128, range: 0...1_000_000)
        let depth = try args.int("--depth", default: 0, range: 0...1_000_000)
        let reps = try args.int("--repetitions", default: 5, range: 1...1000)
        let parallel = try args.int("--parallel", default: 1, range: 1...256)
        let kvType: KVCacheType = try args.choice("--kv-type", default: .f16)
        let loaded = try LoadedModel(args)
        let t = loaded.transformer
        let context = depth + max(prompt, generate) + 1
        let cache = try KVCache(config: t.config, sequences: parallel, contextLength: context, type: kvType)
        var rng = SystemRandomNumberGenerator()
        let vocab = Int32(t.config.vocabularySize)
        func randomTokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32.random(in: 0..<vocab, using: &rng) } }

        /// Fills positions 0..<depth of every sequence (not timed).
        func prefillDepth() throws {
            guard depth > 0 else { return }
            var start = 0
            while start < depth {
                let n = min(512, depth - start)
                for s in 0..<parallel {
                    _ = try t.forward(Batch(tokens: randomTokens(n), startPosition: start, sequence: s), cache: cache)
                }
                start += n
            }
        }

        var results: [Result] = []
        func measure(_ name: String, tokens: Int, _ body: () throws -> Void) throws {
            var samples: [Double] = []
            for rep in 0...reps {  // rep 0 is the warm-up
                try prefillDepth()
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if rep > 0 { samples.append(Double(tokens) / seconds) }
            }
            let mean = samples.reduce(0, +) / Double(samples.count)
            let variance = samples.count > 1 ? samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(samples.count - 1) : 0
            let suffix = depth > 0 ? " @ d\(depth)" : ""
            results.append(Result(test: name + suffix, tokensPerSecond: mean, stddev: variance.squareRoot(), samples: samples))
        }

        if prompt > 0 {
            try measure("pp\(prompt)", tokens: prompt) {
                let tokens = randomTokens(prompt)
                var start = 0
                while start < prompt {  // one sequence, in chunks of 512 as llama-bench's default batch
                    let n = min(512, prompt - start)
                    _ = try t.forward(Batch(tokens: Array(tokens[start..<(start + n)]), startPosition: depth + start), cache: cache)
                    start += n
                }
            }
        }
        if generate > 0 {
            let name = parallel > 1 ? "tg\(generate) x\(parallel)" : "tg\(generate)"
            try measure(name, tokens: generate * parallel) {
                var next = randomTokens(parallel)
                for i in 0..<generate {
                    var batch = Batch()
                    for s in 0..<parallel { batch.append(token: next[s], position: depth + i, sequence: s, wantLogits: true) }
                    let logits = try t.forward(batch, cache: cache)
                    let v = Int(vocab)
                    next = (0..<parallel).map { Sampler.argmax(logits[($0 * v)..<(($0 + 1) * v)]) }
                }
            }
        }

        let summary = ModelSummary(loaded.model)
        let report = Report(model: loaded.model.path, weightBytes: summary.weightBytes, parameters: summary.parameters,
                            threads: t.pool.threadCount, kvCacheBytes: cache.byteCount, kvBytesPerToken: cache.bytesPerToken,
                            peakRSSBytes: ProcessStats.peakResidentBytes() ?? 0, results: results)
        if args.flag("--json") {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        let name = URL(fileURLWithPath: report.model).lastPathComponent
        let rows = results.map { r in
            [name, Format.bytes(report.weightBytes), String(format: "%.1f M", Double(report.parameters) / 1e6), "\(report.threads)",
             r.test, String(format: "%.2f ± %.2f", r.tokensPerSecond, r.stddev)]
        }
        print(Format.table(header: ["model", "size", "params", "threads", "test", "t/s"], rows: rows))
        print("KV cache: \(Format.bytes(report.kvCacheBytes)) for \(parallel) × \(context) positions (\(Format.bytes(report.kvBytesPerToken)) per token); peak RSS \(Format.bytes(report.peakRSSBytes))")
    }
}

/// Process-level measurements from /proc.
enum ProcessStats {
    /// Peak resident set size (VmHWM), in bytes.
    static func peakResidentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
