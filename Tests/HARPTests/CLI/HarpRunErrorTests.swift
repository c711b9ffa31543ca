import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// harp-run as a user meets it: bad input gives one line on stderr naming the problem, and a
/// non-zero exit — never a crash or a hang.
@Suite("harp-run errors")
struct HarpRunErrorTests {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func run(_ arguments: [String]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Fixtures.harpRunPath))
        process.arguments = arguments
        process.currentDirectoryURL = Fixtures.packageRoot
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                       stderr: String(decoding: stderr, as: UTF8.self))
    }

    func expectOneLineError(_ o: Outcome, mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(o.status != 0, sourceLocation: sourceLocation)
        #expect(o.status < 128, "terminated by a signal", sourceLocation: sourceLocation)
        let lines = o.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(o.stderr)", sourceLocation: sourceLocation)
        #expect(o.stderr.hasPrefix("harp-run: ") && o.stderr.contains(text), "stderr: \(o.stderr)", sourceLocation: sourceLocation)
    }

    func temporaryModel(_ bytes: [UInt8]) -> String {
        let path = TinyModel.temporaryPath("cli")
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    @Test("a missing model file")
    func missingFile() throws {
        expectOneLineError(try run(["generate", "-m", "/nonexistent/x.gguf", "-p", "hi"]), mentioning: "/nonexistent/x.gguf: no such file")
    }

    @Test("a truncated model file")
    func truncated() throws {
        let bytes = try TinyModel.writer(TinyModelSpec()).encoded()
        let path = temporaryModel(Array(bytes.prefix(bytes.count / 2)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectOneLineError(try run(["inspect", "-m", path]), mentioning: "truncated")
    }

    @Test("a corrupted header")
    func corrupted() throws {
        var bytes = try TinyModel.writer(TinyModelSpec()).encoded()
        bytes[0] = 0
        let path = temporaryModel(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectOneLineError(try run(["generate", "-m", path, "-p", "hi"]), mentioning: "bad magic")
    }

    @Test("a tensor type the runtime cannot compute with")
    func unsupportedType() throws {
        var w = try TinyModel.writer(TinyModelSpec())
        // Replace one matrix with the same bytes declared as IQ2_XXS (known to GGUF, not to our kernels).
        let spec = TinyModelSpec()
        var rebuilt = GGUFWriter()
        for (k, v) in w.metadata { rebuilt.set(k, v) }
        for t in w.tensors where t.name != "blk.0.ffn_up.weight" { try rebuilt.addTensor(name: t.name, shape: t.shape, type: t.type, data: t.data) }
        let iqBytes = GGMLType.iq2_xxs.byteCount(elements: 256 * spec.ffn) ?? 0
        try rebuilt.addTensor(name: "blk.0.ffn_up.weight", shape: [256, spec.ffn], type: .iq2_xxs, data: Array(repeating: 0, count: iqBytes))
        w = rebuilt
        let path = temporaryModel(try w.encoded())
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectOneLineError(try run(["inspect", "-m", path]), mentioning: "blk.0.ffn_up.weight")
    }

    @Test("an unknown tensor type code")
    func unknownType() throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        try w.addTensor(name: "x", shape: [32], type: .f32, floats: Array(repeating: 0, count: 32))
        var bytes = try w.encoded()
        let entry: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "x"), 1, 0, 0, 0]
        let at = try #require((0..<(bytes.count - entry.count)).first { Array(bytes[$0..<($0 + entry.count)]) == entry })
        bytes[at + entry.count + 8] = 77  // the type code after one u64 dimension
        let path = temporaryModel(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectOneLineError(try run(["inspect", "-m", path]), mentioning: "unknown type 77")
    }

    @Test("a prompt longer than the context")
    func promptTooLong() throws {
        let prompt = String(repeating: "word ", count: 100)
        expectOneLineError(try run(["generate", "-m", Fixtures.smolLM2Path, "-c", "32", "-p", prompt]), mentioning: "does not fit the context of 32")
    }

    @Test("bad arguments name the option")
    func badArguments() throws {
        expectOneLineError(try run(["generate", "--bogus"]), mentioning: "unknown option --bogus")
        expectOneLineError(try run(["generate", "-n", "many", "-p", "x"]), mentioning: "option --n-predict: expected an integer, got 'many'")
        expectOneLineError(try run(["perplexity", "-m", Fixtures.smolLM2Path, "-f", "/nonexistent/text"]), mentioning: "/nonexistent/text")
        let noCommand = try run(["frobnicate"])
        #expect(noCommand.status == 2 && noCommand.stderr.contains("unknown command 'frobnicate'"))
    }
}
