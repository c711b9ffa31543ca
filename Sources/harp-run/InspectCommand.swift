import Foundation
import HARP
import HARPCommandLine

enum InspectCommand {
    static let spec = CommandSpec(
        name: "inspect", summary: "show a model's per-layer structure, parameters and bytes",
        usage: "inspect [-m MODEL] [--metadata]",
        options: [CommonOptions.model,
                  OptionSpec(names: ["--metadata"], value: nil, help: "also list every metadata key")])

    static func run(_ args: ParsedArguments) throws {
        try args.noPositionals()
        let path = args.string("--model") ?? CommonOptions.defaultModelPath
        let file = try GGUFFile(path: path)
        let model = try Model(file: file)
        let config = model.config
        print("\(path): \(config.architecture), \(config.layerCount) layers, d=\(config.embeddingLength), vocab \(config.vocabularySize), context \(config.contextLength)")
        if args.flag("--metadata") {
            for key in file.metadataKeys { print("  \(key) = \(file.metadata[key]?.summary ?? "")") }
        }
        let header = ["layer", "attention", "heads", "kv heads", "head dim", "ffn", "biases", "params", "bytes"]
        var rows: [[String]] = []
        for (l, spec) in config.layers.enumerated() {
            let w = model.weights.layers[l]
            var heads = "-", kvHeads = "-", headDim = "-"
            switch spec.attention {
            case .full(let h, let kv, let hd): heads = "\(h)"; kvHeads = "\(kv)"; headDim = "\(hd)"
            case .valueOnly(let kv, let hd): kvHeads = "\(kv)"; headDim = "\(hd)"
            case .linear, .none: break
            }
            let roles = Set(w.tensors.map(\.0))
            var biases: [String] = []
            if roles.contains(.queryBias) || roles.contains(.valueBias) { biases.append(roles.contains(.queryBias) ? "qkv" : "v") }
            if roles.contains(.outputBias) { biases.append("output") }
            if roles.contains(.downBias) { biases.append("down") }
            let params = w.parameterCount, bytes = w.byteCount
            rows.append(["\(l)", spec.attention.name, heads, kvHeads, headDim, "\(spec.ffnWidth)",
                         biases.isEmpty ? "-" : biases.joined(separator: ","), "\(params)", Format.bytes(bytes)])
        }
        print(Format.table(header: header, rows: rows))
        let summary = ModelSummary(model)
        print("parameters: \(summary.parameters) (\(String(format: "%.1f", Double(summary.parameters) / 1e6)) M)")
        print("weight bytes: \(Format.bytes(summary.weightBytes))")
        print("KV cache per token (f16): \(Format.bytes(config.kvBytesPerToken(elementBytes: 2))) " +
              "— \(config.cachedLayers.count)/\(config.layerCount) layers keep a cache")
        if let alphas = file.metadata["harp.alpha"]?.floatArray {
            print("HARP α per layer: " + alphas.map { String(format: "%.2f", $0) }.joined(separator: " "))
        }
        if let provenance = file.metadata["harp.provenance"]?.stringValue { print("provenance: \(provenance)") }
    }
}

/// Table and size formatting for terminal output.
enum Format {
    static func bytes(_ n: Int) -> String {
        let v = Double(n)
        if v >= Double(1 << 30) { return String(format: "%.2f GiB", v / Double(1 << 30)) }
        if v >= Double(1 << 20) { return String(format: "%.2f MiB", v / Double(1 << 20)) }
        if v >= Double(1 << 10) { return String(format: "%.1f KiB", v / Double(1 << 10)) }
        return "\(n) B"
    }

    static func table(header: [String], rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }
}
