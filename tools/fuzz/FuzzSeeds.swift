import Foundation

/// The seed corpus, made at run time with the project's own writer: a small model of every
/// family (with and without a tokenizer, F32 and quantized) and truncations of them.
enum FuzzSeeds {
    static func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var files: [(String, [UInt8])] = []
        for family in TinyFamily.families {
            let small = try TinyFamily.writer(family) { spec in
                (spec.d, spec.heads, spec.kvHeads, spec.headDim, spec.ffn) = (32, 2, 1, 16, 32)
                spec.layers = family.hasPrefix("gemma") ? 3 : 2
            }
            files.append(("\(family).gguf", try small.encoded()))
            var bare = small
            for (key, _) in small.metadata where key.hasPrefix("tokenizer.") { bare.remove(key) }
            files.append(("\(family)-no-tokenizer.gguf", try bare.encoded()))
        }
        let quantized = try TinyFamily.writer("llama") { spec in
            (spec.d, spec.heads, spec.kvHeads, spec.headDim, spec.ffn, spec.layers) = (32, 2, 1, 16, 32, 1)
            spec.type = .q8_0
        }
        files.append(("llama-q8_0.gguf", try quantized.encoded()))
        let whole = files[0].1
        for share in [0.1, 0.5, 0.9] { files.append(("llama-cut-\(share).gguf", Array(whole.prefix(Int(Double(whole.count) * share))))) }
        for (name, bytes) in files {
            try Data(bytes).write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(name)))
        }
    }
}
