import Foundation
import HARP
import HARPCommandLine
import HARPPrune

let defaultModelPath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
let defaultCalibrationPath = "Benchmarks/data/wikitext-2-raw/wiki.valid.raw"
let writableTypes: [GGMLType] = [.f32, .f16, .q8_0, .q4_0, .q4_1]

/// `harp-prune`: turns a dense GGUF model into a structurally pruned one (HARP or a baseline).
let spec = CommandSpec(
    program: "harp-prune", name: "", summary: "prune a dense GGUF model with HARP or a baseline method",
    usage: "[-m MODEL] -o OUT.gguf [--method harp] [--drop-last 8] [--mlp-ratio R] [--deci OUT-deci.gguf] [options]",
    options: [
        OptionSpec(names: ["-m", "--model"], value: "FILE", help: "dense GGUF model (default: \(defaultModelPath))"),
        OptionSpec(names: ["-o", "--out"], value: "FILE", help: "pruned model, native HARP layout (never the input)"),
        OptionSpec(names: ["--deci"], value: "FILE", help: "also write llama.cpp's deci layout"),
        OptionSpec(names: ["--report"], value: "FILE", help: "markdown report; JSON beside it (default: OUT with .md / .json)"),
        OptionSpec(names: ["--method"], value: "M", help: "harp (default), flap-heads, wanda-sp, magnitude-sp or shortgpt"),
        OptionSpec(names: ["--drop-last"], value: "N", help: "HARP: top layers that lose Q/K (default 8); the baselines' default budget"),
        OptionSpec(names: ["--budget"], value: "F", help: "baselines: share of KV heads removed (default: drop-last / layers)"),
        OptionSpec(names: ["--alpha-grid"], value: "LIST", help: "α values, 'a,b,c' or 'start:end:step' (default 0:1:0.1)"),
        OptionSpec(names: ["--refine"], value: "N", help: "at most N sweeps moving each α to a better grid neighbour after the greedy search (default 2)"),
        OptionSpec(names: ["--search-windows"], value: "N", help: "calibration windows the α search scores (default 20; 0 = all)"),
        OptionSpec(names: ["--compensate"], value: nil, help: "HARP: keep each pruned attention block's calibration mean in its output bias (not in the paper; native layout only)"),
        OptionSpec(names: ["--fit"], value: "MODE", help: "HARP: rebuild the pruned blocks by alpha (the paper's search, default), or by a closed-form fit: output (W_O′ + bias), rank (W_V and W_O′) or linear (d × d + bias)"),
        OptionSpec(names: ["--ridge"], value: "R", help: "--fit: ridge relative to the mean input energy, λ = R · tr(C_xx)/d (default 0.001)"),
        OptionSpec(names: ["--no-fit-bias"], value: nil, help: "--fit: no fitted constant (needed for --deci; see Benchmarks/pruning/README.md for its cost)"),
        OptionSpec(names: ["--mlp-ratio"], value: "R", help: "FLAP MLP pruning ratio on top of the method (default 0: off)"),
        OptionSpec(names: ["-f", "--calibration"], value: "FILE", help: "calibration text (default: \(defaultCalibrationPath))"),
        OptionSpec(names: ["--nsamples"], value: "N", help: "calibration windows (default 128)"),
        OptionSpec(names: ["--seqlen"], value: "N", help: "tokens per calibration window (default 128)"),
        OptionSpec(names: ["--seed"], value: "S", help: "seed of the window offsets (default 0)"),
        OptionSpec(names: ["--type"], value: "T", help: "store matrices as f32, f16, q8_0, q4_0 or q4_1 (default: as the input)"),
        OptionSpec(names: ["-t", "--threads"], value: "N", help: "compute threads (default: all cores)"),
    ])

func status(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }

/// A one-line progress bar on stderr per phase.
final class ProgressBar {
    private var phase = ""
    private var lastDrawn = Date.distantPast
    private let started = Date()

    func update(_ name: String, _ done: Int, _ total: Int) {
        let now = Date()
        guard name != phase || done == total || now.timeIntervalSince(lastDrawn) > 0.2 else { return }
        phase = name
        lastDrawn = now
        let width = 30, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        status(String(format: "\r%-24@ [%@] %d/%d  %.0f s", name as NSString, bar as NSString, done, total, now.timeIntervalSince(started)))
        if done == total { status("\n") }
    }
}

func run(_ args: ParsedArguments) throws {
    try args.noPositionals()
    guard let out = args.string("--out") else { throw HARPError.invalidArgument("missing -o OUT.gguf (the pruned model)") }
    let modelPath = args.string("--model") ?? defaultModelPath
    guard FileManager.default.fileExists(atPath: modelPath) else { throw HARPError.io(path: modelPath, reason: "no such model file") }
    let deci = args.string("--deci")

    var options = PruneOptions()
    options.method = try args.choice("--method", default: .harp)
    options.dropLast = try args.int("--drop-last", default: options.dropLast, range: 0...100_000)
    if args.string("--budget") != nil { options.budget = Double(try args.float("--budget", default: 0, range: 0...1)) }
    if let grid = args.string("--alpha-grid") { options.alphaGrid = try PruneOptions.parseAlphaGrid(grid) }
    let searchWindows = try args.int("--search-windows", default: options.searchWindows ?? 0, range: 0...1_000_000)
    options.searchWindows = searchWindows == 0 ? nil : searchWindows
    options.refinementSweeps = try args.int("--refine", default: options.refinementSweeps, range: 0...100)
    options.meanCompensation = args.flag("--compensate")
    if options.meanCompensation, deci != nil {
        // Checked before the search: llama.cpp's deci graph has no bias after a linear or removed block.
        throw HARPError.invalidArgument("--compensate cannot be combined with --deci: the deci layout has no place for a compensated block's output bias")
    }
    options.fit = try args.choice("--fit", default: .alpha)
    options.ridge = Double(try args.float("--ridge", default: Float(options.ridge), range: 0...1e6))
    options.fitBias = !args.flag("--no-fit-bias")
    if options.fit != .alpha, options.fitBias, deci != nil {
        throw HARPError.invalidArgument("--fit \(options.fit.rawValue) fits a bias, which the deci layout cannot hold: add --no-fit-bias to write --deci")
    }
    options.mlpRatio = try args.float("--mlp-ratio", default: 0, range: 0...0.99)
    if let name = args.string("--type") {
        guard let type = GGMLType(name: name), writableTypes.contains(type) else {
            throw HARPError.invalidArgument("option --type: '\(name)' is not one of \(writableTypes.map { $0.name.lowercased() }.joined(separator: ", "))")
        }
        options.storageType = type
    }
    let windows = try args.int("--nsamples", default: 128, range: 1...1_000_000)
    let length = try args.int("--seqlen", default: 128, range: 8...1_048_576)
    let seed = UInt64(try args.int("--seed", default: 0, range: 0...Int.max))
    let threads = try args.optionalInt("--threads", range: 1...256)
    let calibrationPath = args.string("--calibration") ?? defaultCalibrationPath
    // Every file this run writes, checked against the inputs and each other before any work.
    let base = out.hasSuffix(".gguf") ? String(out.dropLast(5)) : out
    let markdownPath = args.string("--report") ?? base + ".md"
    let jsonPath = (markdownPath.hasSuffix(".md") ? String(markdownPath.dropLast(3)) : markdownPath) + ".json"
    let plan = try OutputPlan(
        inputs: [.init("-m", modelPath), .init("-f", calibrationPath)],
        outputs: [.init("--out", out)] + (deci.map { [.init("--deci", $0)] } ?? [])
            + [.init("--report", markdownPath), .init("the JSON report", jsonPath)])
    for stale in plan.removeStaleTemporaries() { status("harp-prune: removed \(stale), left by an interrupted run\n") }
    TemporaryFiles.removeOnTermination()

    let file = try GGUFFile(path: modelPath)
    let model = try Model(file: file)
    let tokenizer = try TokenizerLoader.load(from: file)
    let calibration = try CalibrationSet.load(path: calibrationPath, tokenizer: tokenizer, count: windows, length: length, seed: seed)
    let pruner = try Pruner(model: model, calibration: calibration, options: options, pool: ComputePool(threads: threads))
    status("harp-prune: \(options.method.rawValue) on \(modelPath) (\(model.config.layerCount) layers), "
           + "calibration \(windows) × \(length) tokens of \(calibrationPath)\n")
    let bar = ProgressBar()
    let outcome = try pruner.run(progress: bar.update)
    let report = outcome.report
    let metadata = Pruner.provenance(report)
    // Staged (each model reloaded to prove it loads), then published together: a refused
    // result writes nothing.
    var staged = [try plan.stageModel(outcome.model, to: out, layout: .native, type: options.storageType, extraMetadata: metadata)]
    if let deci {
        staged.append(try plan.stageModel(outcome.model, to: deci, layout: .deci, type: options.storageType, extraMetadata: metadata))
    }
    staged.append(try plan.stage(Data(report.markdown.utf8), to: markdownPath))
    staged.append(try plan.stage(report.json(), to: jsonPath))
    try plan.commit(staged)
    status("wrote \(([out] + (deci.map { [$0] } ?? [])).joined(separator: ", "))\n")
    for phase in report.phases where phase != "total" { status("  \(phase): " + String(format: "%.1f s\n", report.timings[phase] ?? 0)) }
    if !report.searchedLayers.isEmpty, options.fit == .alpha {
        print("alpha (layers \(report.searchedLayers.map(String.init).joined(separator: ",")), top first): "
              + report.alphasTopFirst.map { String(format: "%.1f", $0) }.joined(separator: " "))
    }
    print(String(format: "calibration perplexity %.4f -> %.4f; parameters %d -> %d; KV bytes/token %d -> %d; %.1f s",
                 report.before.calibrationPerplexity, report.after.calibrationPerplexity, report.before.parameters,
                 report.after.parameters, report.before.kvBytesPerToken, report.after.kvBytesPerToken, report.timings["total"] ?? 0))
    print("report: \(markdownPath), \(jsonPath)")
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    let parsed = try ParsedArguments(arguments, spec: spec)
    if parsed.helpRequested || arguments.isEmpty {
        print(spec.help)
        exit(arguments.isEmpty ? 2 : 0)
    }
    try run(parsed)
} catch {
    status("harp-prune: \(error)\n")
    exit(1)
}
