import HARP
import HARPCommandLine

extension CommandSpec {
    /// A `harp-run` subcommand.
    init(name: String, summary: String, usage: String, options: [OptionSpec]) {
        self.init(program: "harp-run", name: name, summary: summary, usage: usage, options: options)
    }
}

/// Options shared by every command that loads a model.
enum CommonOptions {
    static let model = OptionSpec(names: ["-m", "--model"], value: "FILE", help: "GGUF model file (default: \(defaultModelPath))")
    static let weights = OptionSpec(names: ["--weights"], value: "FORMAT", help: "native (as stored) or f32 (dequantize at load)")
    static let threads = OptionSpec(names: ["-t", "--threads"], value: "N", help: "compute threads (default: all cores)")
    static let all = [model, weights, threads]

    static let defaultModelPath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
}
