import Foundation
import HARP

/// Loads a model once and answers several questions concurrently through one engine, streaming
/// the first answer and reporting the decoding speed of all of them together.
/// Usage: EngineDemo [MODEL.gguf] [CONCURRENT]
let arguments = CommandLine.arguments
let modelPath = arguments.count > 1 ? arguments[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf"
let concurrent = arguments.count > 2 ? Int(arguments[2]) ?? 4 : 4

let topics = ["the moon", "bread", "rivers", "music", "chess", "volcanoes", "bees", "winter"]

do {
    let engine = try Engine(modelPath: modelPath,
                            configuration: EngineConfiguration(maxConcurrentSequences: concurrent, contextLength: 512))
    var sampling = SamplingParameters()
    sampling.seed = 1
    let started = ContinuousClock.now
    let generated = try await withThrowingTaskGroup(of: Int.self) { group in
        for i in 0..<concurrent {
            let request = GenerationRequest(prompt: .chat([.user("Tell me about \(topics[i % topics.count]).")]),
                                            maxTokens: 64, sampling: sampling)
            group.addTask {
                var tokens = 0
                for try await event in engine.generate(request) {
                    switch event {
                    case .token(_, let text):
                        tokens += 1
                        if i == 0 { print(text, terminator: "") }
                    case .finished(let summary):
                        if i == 0 { print("\n[\(summary.finishReason), \(summary.generatedTokens) tokens]") }
                    }
                }
                return tokens
            }
        }
        var total = 0
        for try await tokens in group { total += tokens }
        return total
    }
    let elapsed = ContinuousClock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    print(String(format: "%d sequences: %d tokens in %.2f s, %.1f tokens/s together", concurrent, generated, seconds, Double(generated) / seconds))
} catch {
    FileHandle.standardError.write(Data("EngineDemo: \(error)\n".utf8))
    exit(1)
}
