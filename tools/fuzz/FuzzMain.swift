// libFuzzer entry point for the GGUF reader, the model loader, the KV cache and the tokenizer
// loader. Compiled by tools/fuzz.sh together with Sources/HARP (as one module, with ASan and
// libFuzzer coverage); not part of the Swift package.
import Foundation

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    if let seeds = ProcessInfo.processInfo.environment["HARP_FUZZ_WRITE_SEEDS"] {
        do { try FuzzSeeds.write(to: seeds) } catch {
            FileHandle.standardError.write(Data("harp-fuzz: cannot write seeds: \(error)\n".utf8))
            exit(1)
        }
        exit(0)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    exercise(bytes)
    return 0
}

/// Everything a user's `harp-run generate` does with a file before the first forward pass, then
/// one forward pass when the model is small. Errors are the expected outcome; traps and memory
/// errors are what the fuzzer looks for.
func exercise(_ bytes: [UInt8]) {
    // In memory: the parser is the same as for a mapped file, without a file write per input.
    guard let file = try? GGUFFile(bytes: bytes, name: "fuzz-input.gguf") else { return }
    for key in file.metadataKeys { _ = file.metadata[key]?.summary }
    if let tokenizer = try? TokenizerLoader.load(from: file) {
        let ids = tokenizer.encode("Hello, wörld! <|im_end|> 123", parseSpecial: true)
        _ = tokenizer.decode(ids)
    }
    guard let model = try? Model(file: file), let cache = try? KVCache(config: model.config, contextLength: 8) else { return }
    _ = ModelSummary(model)
    // A forward pass only on models whose weights are a few MB at most (keeps executions fast).
    guard model.config.embeddingLength <= 256, model.config.vocabularySize <= 4096, model.config.layerCount <= 8 else { return }
    let transformer = Transformer(model: model, pool: ComputePool(threads: 1))
    _ = try? transformer.forward(Batch(tokens: [0, 1], startPosition: 0, allLogits: false), cache: cache)
}
