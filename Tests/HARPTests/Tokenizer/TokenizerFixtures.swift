import Foundation
@testable import HARP

/// Models, data and llama.cpp references the tokenizer tests read, located from this file.
enum TokenizerFixtures {
    /// The package root (this file is in Tests/HARPTests/Tokenizer/).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let sharedRoot = packageRoot.deletingLastPathComponent().appendingPathComponent("shared")

    static let smolLMPath = packageRoot.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let qwenPath = packageRoot.appendingPathComponent("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").path
    static let referencePath = sharedRoot.appendingPathComponent("reference/smollm2-135m-llamacpp.json").path
    static let wikiTestPath = sharedRoot.appendingPathComponent("data/wikitext-2-raw/wiki.test.raw").path

    static var hasSmolLM: Bool { exists(smolLMPath) && exists(referencePath) }
    static var hasQwen: Bool { exists(qwenPath) }
    static var hasWikiText: Bool { hasSmolLM && exists(wikiTestPath) }

    /// Loading a vocabulary takes a while in debug builds, so each model is loaded once.
    static let smolLM: Result<any Tokenizer, Error> = Result { try TokenizerLoader.load(from: GGUFFile(path: smolLMPath)) }
    static let qwen: Result<any Tokenizer, Error> = Result { try TokenizerLoader.load(from: GGUFFile(path: qwenPath)) }

    static func reference() throws -> LlamaCppReference {
        try JSONDecoder().decode(LlamaCppReference.self, from: Data(contentsOf: URL(fileURLWithPath: referencePath)))
    }

    private static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
}

/// The parts of the llama.cpp reference file the tokenizer is checked against.
struct LlamaCppReference: Decodable {
    struct TokenizerSection: Decodable { let cases: [TokenizerCase] }
    struct TokenizerCase: Decodable {
        let text: String
        let ids: [Int32]
        let parse_special: Bool
    }
    struct Prompt: Decodable {
        let prompt: String
        let prompt_ids: [Int32]
    }
    struct Perplexity: Decodable { let first_16_ids: [Int32] }

    let tokenizer: TokenizerSection
    let next_token_f32: [Prompt]
    let perplexity: Perplexity
}
