import Foundation
import HARP
import HARPCommandLine

/// Unbuffered terminal output: streamed tokens must appear as they are produced.
enum Output {
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func status(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static func error(_ text: String) {
        status("harp-run: \(text)\n")
    }
}

/// Loading shared by the commands: model file, weight format, threads.
struct LoadedModel {
    let model: Model
    let tokenizer: any Tokenizer
    let transformer: Transformer

    init(_ args: ParsedArguments) throws {
        let path = args.string("--model") ?? CommonOptions.defaultModelPath
        guard FileManager.default.fileExists(atPath: path) else {
            if args.string("--model") == nil {
                throw HARPError.io(path: path, reason: "no such file (run tools/setup.sh to fetch the default model, or pass -m FILE)")
            }
            throw HARPError.io(path: path, reason: "no such file")
        }
        let format: WeightFormat = try args.choice("--weights", default: .native)
        let threads = try args.optionalInt("--threads", range: 1...256)
        let file = try GGUFFile(path: path)
        model = try Model(file: file, weights: format)
        tokenizer = try TokenizerLoader.load(from: file)
        transformer = Transformer(model: model, pool: ComputePool(threads: threads))
    }
}
