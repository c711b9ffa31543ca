import Foundation
import Testing
@testable import HARP
@testable import HARPPrune
import HARPTestSupport

/// The pruner's reproducers from issue 13: results that would not reload are refused before
/// anything is written, non-finite figures reach the JSON report as null, and harp-prune changes
/// none of the user's files but its declared outputs, even when interrupted.
@Suite("Pruner on hostile options and files", .serialized)
struct HostilePruneTests {
    static let text = String(repeating: "The quick brown fox jumps over the lazy dog; a b ab. ", count: 40)

    /// A scene for the command-line runs: a tiny Llama model with a tokenizer (named `modelName`)
    /// and a calibration text in a fresh directory.
    struct Scene {
        let dir: String
        let model: String
        var text: String { dir + "/calib.txt" }
        init(modelName: String = "m.gguf") throws {
            dir = try TinyModel.temporaryDirectory("prune-cli")
            model = dir + "/" + modelName
            try TinyFamily.writer("llama").write(to: model)
            try Data(HostilePruneTests.text.utf8).write(to: URL(fileURLWithPath: text))
        }
        /// harp-prune with a short calibration; the exit status and stderr.
        func run(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
            try PruneFixtures.runPrune(["-m", model, "-f", text, "--nsamples", "2", "--seqlen", "16", "-t", "1"] + arguments)
        }
        /// Every file of the directory with its contents.
        func snapshot() throws -> [String: Data] {
            var out: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
                out[name] = FileManager.default.contents(atPath: dir + "/" + name)
            }
            return out
        }
        func remove() { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// Runs harp-prune expecting a refusal whose one line names every `mention`, and checks
    /// the directory is exactly as before.
    static func expectRefusal(_ scene: Scene, _ arguments: [String], _ mentions: [String],
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try scene.snapshot()
        let (status, stderr) = try scene.run(arguments)
        #expect(status == 1, "\(arguments): \(stderr)", sourceLocation: sourceLocation)
        #expect(stderr.split(separator: "\n").count == 1, "\(stderr)", sourceLocation: sourceLocation)
        for m in mentions { #expect(stderr.contains(m), "\(stderr) should name \(m)", sourceLocation: sourceLocation) }
        #expect(try scene.snapshot() == before, "\(arguments) changed the directory", sourceLocation: sourceLocation)
    }

    @Test("harp-prune refuses, before any work, every output that would replace an input or another output")
    func commandLineOutputs() throws {
        let s = try Scene()
        defer { s.remove() }
        let out = s.dir + "/o6.gguf"
        try Self.expectRefusal(s, ["-o", out, "--report", s.model], ["--report '\(s.model)'", "-m '\(s.model)'"])
        try Self.expectRefusal(s, ["-o", out, "--report", out], ["--report '\(out)'", "--out '\(out)'"])
        try Self.expectRefusal(s, ["-o", s.dir + "/missing/o.gguf"], ["directory '\(s.dir)/missing' does not exist"])
        try FileManager.default.linkItem(atPath: s.model, toPath: s.dir + "/hard.gguf")
        try Self.expectRefusal(s, ["-o", s.dir + "/hard.gguf"], ["--out '\(s.dir)/hard.gguf'", "-m '\(s.model)'"])
        try Self.expectRefusal(s, ["-o", out, "--report", s.text], ["--report '\(s.text)'", "-f '\(s.text)'"])

        // -m m.json -o m.gguf: the JSON report derived from the output is the input.
        let j = try Scene(modelName: "m.json")
        defer { j.remove() }
        try Self.expectRefusal(j, ["-o", j.dir + "/m.gguf"], ["the JSON report '\(j.model)'", "-m '\(j.model)'"])
    }

    @Test("bad α grids, an all-layer ShortGPT and random-byte calibration are refused before writing")
    func commandLineRefusals() throws {
        let s = try Scene()
        defer { s.remove() }
        let out = s.dir + "/o.gguf"
        for grid in ["0:1:1e-30", "0:inf:1", "0:1:1e-6"] {
            try Self.expectRefusal(s, ["-o", out, "--alpha-grid", grid], ["--alpha-grid", grid])
        }
        try Self.expectRefusal(s, ["-o", out, "--method", "shortgpt", "--drop-last", "3"], ["shortgpt would remove all 3 layers"])
        var random = SplitMix64(seed: 9)
        let noise = s.dir + "/noise.bin"
        try Data((0..<200_000).map { _ in UInt8(truncatingIfNeeded: random.next()) }).write(to: URL(fileURLWithPath: noise))
        try Self.expectRefusal(s, ["-o", out, "-f", noise], ["\(noise): the calibration file is not valid UTF-8"])
        // Real text, but less of it than the windows cover together (the Scene asks for 2 × 16).
        let short = s.dir + "/short.txt"
        try Data("The quick brown fox jumps".utf8).write(to: URL(fileURLWithPath: short))
        let tokens = try TokenizerLoader.load(from: GGUFFile(path: s.model)).encode(String(contentsOfFile: short, encoding: .utf8), parseSpecial: false).count
        try #require(tokens > 16 && tokens < 32, "the short text must fit one window but not two: \(tokens) tokens")
        try Self.expectRefusal(s, ["-o", out, "-f", short], ["\(short): the calibration text has \(tokens) tokens", "2 windows × 16"])
    }

    @Test("--drop-last 0 writes the model and a JSON report with no infinity")
    func dropLastZero() throws {
        let s = try Scene()
        defer { s.remove() }
        let out = s.dir + "/o.gguf"
        let (status, stderr) = try s.run(["-o", out, "--drop-last", "0"])
        #expect(status == 0, "\(stderr)")
        let json = try #require(FileManager.default.contents(atPath: s.dir + "/o.json"))
        let report = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect((report["sweepPerplexities"] as? [Any])?.isEmpty == true)
        #expect(try Model(path: out).config.layerCount == 3)
        // Exactly the declared outputs appeared: no temporaries left behind.
        #expect(Set(try s.snapshot().keys) == ["m.gguf", "calib.txt", "o.gguf", "o.md", "o.json"])
    }

    @Test("a non-finite figure is written as null")
    func nonFiniteJSON() throws {
        let (model, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = PruneOptions()
        options.dropLast = 1
        options.alphaGrid = [0, 1]
        let calibration = try TinyDense.calibration(vocab: model.config.vocabularySize, windows: 2, length: 16)
        var report = try Pruner(model: model, calibration: calibration, options: options, pool: ComputePool(threads: 1)).run().report
        report.after.calibrationPerplexity = .infinity
        report.sweepPerplexities = [.nan, 2]
        let json = try #require(try JSONSerialization.jsonObject(with: report.json()) as? [String: Any])
        #expect((json["after"] as? [String: Any])?["calibrationPerplexity"] is NSNull)
        #expect((json["sweepPerplexities"] as? [Any])?.first is NSNull)
        #expect((json["sweepPerplexities"] as? [Any])?.last as? Double == 2)
        #expect((json["method"] as? String) == "harp")
    }

    @Test("a result that would not reload is refused before it is written")
    func unloadableResults() throws {
        let dir = try TinyModel.temporaryDirectory("unloadable")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let out = dir + "/o.gguf", deci = dir + "/o-deci.gguf"
        let plan = try OutputPlan(inputs: [.init("-m", path)], outputs: [.init("--out", out), .init("--deci", deci)])

        var empty = ModelEditor(model, storageType: nil)
        empty.specs = []
        empty.layers = []
        #expect(throws: HARPError.self) {
            try plan.stageModel(empty.build(), to: out, layout: .native, type: nil, extraMetadata: [])
        }
        do { _ = try plan.stageModel(empty.build(), to: out, layout: .native, type: nil, extraMetadata: []) } catch {
            #expect("\(error)".contains("--out '\(out)': the pruned model would not load"), "\(error)")
            #expect("\(error)".contains("block_count"), "\(error)")
        }

        // deci: llama.cpp skips the attention of a layer without FFN, so such a layer cannot be written.
        var noFFN = ModelEditor(model, storageType: nil)
        noFFN.specs[1].ffnWidth = 0
        noFFN.layers[1].mlp = .none
        let staged = try plan.stageModel(noFFN.build(), to: out, layout: .native, type: nil, extraMetadata: [])
        do {
            _ = try plan.stageModel(noFFN.build(), to: deci, layout: .deci, type: nil, extraMetadata: [])
            Issue.record("deci accepted a layer with attention and no FFN")
        } catch {
            #expect("\(error)".contains("layer 1: the deci layout cannot hold a layer with full attention and no FFN"), "\(error)")
        }
        staged.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}

/// SIGINT and SIGTERM while harp-prune writes: the temporaries go, the output never appears.
@Suite("Pruner interrupted while writing", .serialized)
struct InterruptedPruneTests {
    @Test("SIGINT or SIGTERM during the write removes the temporary file", arguments: [SIGINT, SIGTERM])
    func interrupted(signal: Int32) throws {
        let harpPrune = try #require(PruneFixtures.harpPrunePath, "harp-prune is not built beside the tests")
        #expect(PruneFixtures.hasSmolLM2, "models/SmolLM2-135M-Instruct.Q4_1.gguf is missing")
        let dir = try TinyModel.temporaryDirectory("interrupted")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = dir + "/calib.txt"
        try Data(String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20).utf8).write(to: URL(fileURLWithPath: text))
        let out = dir + "/o.gguf"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: harpPrune)
        // F32 storage makes a ~540 MB file: its write lasts long enough to be caught.
        process.arguments = ["-m", PruneFixtures.smolLM2Path, "-o", out, "-f", text, "--nsamples", "1", "--seqlen", "16",
                             "--drop-last", "1", "--alpha-grid", "1", "--refine", "0", "--type", "f32", "-t", "1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let temporary = dir + "/.o.gguf.\(process.processIdentifier).tmp"
        var caught = false
        let deadline = Date().addingTimeInterval(120)
        while process.isRunning && Date() < deadline {
            if FileManager.default.fileExists(atPath: temporary) {
                kill(process.processIdentifier, signal)
                caught = true
                break
            }
            usleep(2000)
        }
        process.waitUntilExit()
        #expect(caught, "the write finished before the temporary was seen")
        #expect(process.terminationStatus == 128 + signal)
        #expect(!FileManager.default.fileExists(atPath: temporary))
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
