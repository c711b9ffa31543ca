import Foundation

/// Paths of the package, its models and the shared llama.cpp references.
enum Fixtures {
    /// The package root, found from this file's location (Tests/HARPTests/Support/).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let smolLM2Path = packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var hasSmolLM2: Bool { FileManager.default.fileExists(atPath: smolLM2Path) }

    static let wikiTestPath = packageRoot.appendingPathComponent("Benchmarks/data/wikitext-2-raw/wiki.test.raw").path

    /// `../shared/reference/smollm2-135m-llamacpp.json` beside the package.
    static let smolLM2ReferencePath = packageRoot.deletingLastPathComponent()
        .appendingPathComponent("shared/reference/smollm2-135m-llamacpp.json").path
    static var hasSmolLM2Reference: Bool { FileManager.default.fileExists(atPath: smolLM2ReferencePath) }

    static func smolLM2Reference() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: smolLM2ReferencePath))
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return json
    }

    /// The built `harp-run` next to the test bundle.
    static var harpRunPath: String? {
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "")
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("harp-run").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
