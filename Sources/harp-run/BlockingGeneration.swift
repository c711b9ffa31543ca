import Dispatch
import Foundation
import HARP

/// Runs one engine generation on a task while the calling thread waits: the synchronous commands
/// (`generate`, `chat`) stream through the same engine, hence the same decoding loop, as `serve`.
enum BlockingGeneration {
    struct Outcome {
        var summary: GenerationSummary?
        var error: (any Error)?
        /// `poll` asked to stop before the generation finished.
        var cancelled: Bool
    }

    /// `onToken` runs on the generating task for every delivered token. `poll` runs on the calling
    /// thread every `interval` seconds while it waits; returning true cancels the generation.
    static func run(_ engine: Engine, _ request: GenerationRequest, interval: Double = 0.05,
                    onToken: @escaping @Sendable (Int32, String) -> Void, poll: () -> Bool = { false }) -> Outcome {
        let result = ResultBox()
        let finished = DispatchSemaphore(value: 0)
        let task = Task {
            do {
                for try await event in engine.generate(request) {
                    switch event {
                    case .token(let id, let text): onToken(id, text)
                    case .finished(let summary): result.set(summary: summary)
                    }
                }
            } catch {
                result.set(error: error)
            }
            finished.signal()
        }
        var cancelled = false
        while finished.wait(timeout: .now() + interval) == .timedOut {
            if !cancelled && poll() {
                cancelled = true
                task.cancel()
            }
        }
        let (summary, error) = result.value
        return Outcome(summary: summary, error: error, cancelled: cancelled && summary == nil)
    }

    private final class ResultBox: @unchecked Sendable {  // guarded by `lock`
        private let lock = NSLock()
        private var summary: GenerationSummary?
        private var error: (any Error)?
        func set(summary s: GenerationSummary) { lock.withLock { summary = s } }
        func set(error e: any Error) { lock.withLock { error = e } }
        var value: (GenerationSummary?, (any Error)?) { lock.withLock { (summary, error) } }
    }
}
