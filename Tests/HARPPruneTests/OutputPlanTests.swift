import Foundation
import Testing
@testable import HARP
@testable import HARPPrune
import HARPTestSupport

/// Every path harp-prune writes is checked before any work, against its inputs and one another.
@Suite("Pruner output plan")
struct OutputPlanTests {
    /// A directory with an input model and a calibration text.
    struct Scene {
        let dir: String
        var model: String { dir + "/m.gguf" }
        var text: String { dir + "/calib.txt" }
        init() throws {
            dir = try TinyModel.temporaryDirectory("plan")
            try Data("model".utf8).write(to: URL(fileURLWithPath: model))
            try Data("text".utf8).write(to: URL(fileURLWithPath: text))
        }
        func plan(_ outputs: [(String, String)]) throws -> OutputPlan {
            try OutputPlan(inputs: [.init("-m", model), .init("-f", text)], outputs: outputs.map { .init($0.0, $0.1) })
        }
        /// The refusal for `outputs`, which must name `mentions`.
        func refusal(_ outputs: [(String, String)], _ mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try plan(outputs)
                Issue.record("accepted \(outputs)", sourceLocation: sourceLocation)
            } catch {
                let text = "\(error)"
                for m in mentions { #expect(text.contains(m), "\(text) should name \(m)", sourceLocation: sourceLocation) }
                #expect(!text.contains("\n"), sourceLocation: sourceLocation)
            }
        }
        func remove() { try? FileManager.default.removeItem(atPath: dir) }
    }

    @Test("an output that is an input, through any spelling, symlink or hard link, is refused naming both")
    func outputIsInput() throws {
        let s = try Scene()
        defer { s.remove() }
        s.refusal([("--out", s.dir + "/o.gguf"), ("--report", s.model)], ["--report '\(s.model)'", "-m '\(s.model)'", "never overwrites its input"])
        s.refusal([("--out", s.dir + "/./sub/../m.gguf")], ["does not exist"])  // sub/.. cannot be resolved (nor renamed into)
        try FileManager.default.createDirectory(atPath: s.dir + "/sub", withIntermediateDirectories: false)
        s.refusal([("--out", s.dir + "/./sub/../m.gguf")], ["--out '\(s.dir)/./sub/../m.gguf'", "-m '\(s.model)'"])
        try FileManager.default.createSymbolicLink(atPath: s.dir + "/link.gguf", withDestinationPath: s.model)
        s.refusal([("--deci", s.dir + "/link.gguf")], ["--deci", "link.gguf", "-m '\(s.model)'"])
        try FileManager.default.linkItem(atPath: s.model, toPath: s.dir + "/hard.gguf")
        s.refusal([("--out", s.dir + "/hard.gguf")], ["hard.gguf", "-m '\(s.model)'"])
        s.refusal([("--out", s.dir + "/o.gguf"), ("the JSON report", s.text)], ["the JSON report", "-f '\(s.text)'"])
    }

    @Test("two outputs that are one file are refused naming both")
    func outputsCollide() throws {
        let s = try Scene()
        defer { s.remove() }
        let out = s.dir + "/o6.gguf"
        s.refusal([("--out", out), ("--report", out)], ["--report '\(out)'", "--out '\(out)'", "same file"])
        s.refusal([("--out", out), ("--deci", s.dir + "/sub/../o6.gguf")], [])  // missing sub: refused as a missing directory
        try FileManager.default.createDirectory(atPath: s.dir + "/sub", withIntermediateDirectories: false)
        s.refusal([("--out", out), ("--deci", s.dir + "/sub/../o6.gguf")], ["--deci", "--out '\(out)'"])
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("a directory as output, or an output in a missing directory, is refused")
    func directories() throws {
        let s = try Scene()
        defer { s.remove() }
        s.refusal([("--out", s.dir)], ["--out '\(s.dir)'", "is a directory"])
        s.refusal([("--out", s.dir + "/nowhere/o.gguf")], ["--out", "directory '\(s.dir)/nowhere' does not exist"])
        let plan = try s.plan([("--out", s.dir + "/o.gguf"), ("--report", s.dir + "/o.md")])
        #expect(plan.outputs.count == 2)
    }

    @Test("a stale temporary of a killed run is removed; a live process's is kept")
    func staleTemporaries() throws {
        let s = try Scene()
        defer { s.remove() }
        // A process id that has exited: a child we started and waited for.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let stale = s.dir + "/.o.gguf.\(child.processIdentifier).tmp"
        let live = s.dir + "/.o.gguf.1.tmp"  // init always runs
        for p in [stale, live] { _ = FileManager.default.createFile(atPath: p, contents: Data("x".utf8)) }
        let plan = try s.plan([("--out", s.dir + "/o.gguf")])
        #expect(plan.removeStaleTemporaries() == [stale])
        #expect(!FileManager.default.fileExists(atPath: stale) && FileManager.default.fileExists(atPath: live))
    }

    @Test("α grids: finite, ordered, positive step, at most 1000 values")
    func alphaGrids() throws {
        #expect(try PruneOptions.parseAlphaGrid("0:1:0.1").count == 11)
        #expect(try PruneOptions.parseAlphaGrid("0, 0.5,1") == [0, 0.5, 1])
        for bad in ["0:1:1e-30", "0:inf:1", "0:1:1e-6", "0:1:0", "1:0:0.1", "nan:1:0.1", "0:1:-1", "0,inf", "0,-1", "", "a:b:c", "0:1"] {
            #expect(throws: HARPError.self, "\(bad)") { try PruneOptions.parseAlphaGrid(bad) }
        }
        do { _ = try PruneOptions.parseAlphaGrid("0:1:1e-6") } catch {
            #expect("\(error)" == "option --alpha-grid: '0:1:1e-6' makes 1000001 values; at most 1000 are allowed")
        }
    }

    @Test("calibration text must be UTF-8 text: random bytes are refused naming the file")
    func calibrationText() throws {
        var random = SplitMix64(seed: 5)
        let noise = Data((0..<200_000).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        #expect(throws: HARPError.self) { try CalibrationSet.calibrationText(noise, path: "noise.bin") }
        do { _ = try CalibrationSet.calibrationText(noise, path: "noise.bin") } catch {
            #expect("\(error)".hasPrefix("noise.bin: the calibration file is not valid UTF-8"), "\(error)")
        }
        // Valid UTF-8 that is mostly control characters is not text either.
        let controls = Data((0..<1000).map { UInt8(1 + $0 % 8) })
        #expect(throws: HARPError.self) { try CalibrationSet.calibrationText(controls, path: "c.txt") }
        #expect(try CalibrationSet.calibrationText(Data("Naïve text, ☃.\n\tSecond line.".utf8), path: "t.txt") == "Naïve text, ☃.\n\tSecond line.")
    }
}
