import Foundation
import HARP

/// An OpenAI-compatible HTTP API over one engine (`/v1/chat/completions`, `/v1/completions`, with
/// or without SSE streaming, `/v1/models`, `/health`); concurrent requests share its batched decoder.
/// A client that disconnects while its request is generating (streaming or not) has the
/// generation cancelled within `disconnectPollSeconds`.
public struct OpenAIServer: Sendable {
    /// `max_tokens` when a request leaves it out (bounded further by the context the prompt leaves).
    public static let defaultMaxTokens = 512
    static let disconnectPollSeconds = 0.1

    let engine: Engine
    let modelID: String
    let created = Int(Date().timeIntervalSince1970)
    private let requestCounter = RequestCounter()

    public init(engine: Engine, modelID: String) {
        self.engine = engine
        self.modelID = modelID
    }

    /// An HTTP server bound to `host:port` that answers with this API; run it with `serve()`.
    public func listen(host: String, port: Int, limits: HTTPServer.Limits = HTTPServer.Limits()) throws -> HTTPServer {
        try HTTPServer(host: host, port: port, limits: limits) { request, connection in handle(request, connection) }
    }

    func handle(_ request: HTTPRequest, _ connection: HTTPConnection) {
        switch (request.method, request.path) {
        case ("GET", "/health"):
            connection.send(HTTPResponse(status: 200, body: Data(#"{"status":"ok"}"#.utf8)))
        case ("GET", "/v1/models"):
            let list = OpenAI.ModelList(data: [.init(id: modelID, created: created)])
            connection.send(HTTPResponse(status: 200, body: OpenAI.encode(list)))
        case ("POST", "/v1/chat/completions"):
            complete(request, connection, chat: true)
        case ("POST", "/v1/completions"):
            complete(request, connection, chat: false)
        case (_, "/health"), (_, "/v1/models"), (_, "/v1/chat/completions"), (_, "/v1/completions"):
            sendError(connection, status: 405, "method \(request.method) is not allowed on \(request.path)", type: "invalid_request_error")
        default:
            sendError(connection, status: 404, "no such endpoint: \(request.path)", type: "invalid_request_error", code: "not_found")
        }
    }

    private func sendError(_ connection: HTTPConnection, status: Int, _ message: String, type: String, code: String? = nil) {
        connection.send(HTTPResponse(status: status, body: OpenAI.encode(OpenAI.ErrorBody(error: .init(message: message, type: type, code: code)))))
    }

    /// The generation a body asks for, or the 4xx answer (status, message, code) it gets.
    func generationRequest(_ body: CompletionBody) -> Result<GenerationRequest, ClientError> {
        if let model = body.model, model != modelID, model != modelID + ".gguf" {
            return .failure(ClientError(status: 404, message: "model '\(model)' does not exist; this server has '\(modelID)'", code: "model_not_found"))
        }
        let tokens: [Int32]
        do {
            tokens = try engine.promptTokens(body.prompt)
        } catch {
            return .failure(ClientError(status: 400, message: "\(body.isChat ? "messages" : "prompt"): \(error)"))
        }
        let context = engine.configuration.contextLength
        guard !tokens.isEmpty else { return .failure(ClientError(status: 400, message: "prompt: has no tokens")) }
        guard tokens.count < context else {
            return .failure(ClientError(status: 400, message: "\(GenerationError.promptTooLong(promptTokens: tokens.count, contextLength: context))",
                                        code: "context_length_exceeded"))
        }
        let maxTokens = body.maxTokens ?? min(Self.defaultMaxTokens, context - tokens.count)
        return .success(GenerationRequest(prompt: .tokens(tokens), maxTokens: maxTokens, sampling: body.sampling, stop: body.stop))
    }

    struct ClientError: Error {
        var status: Int
        var message: String
        var code: String?
    }

    private func complete(_ request: HTTPRequest, _ connection: HTTPConnection, chat: Bool) {
        let body: CompletionBody
        do {
            body = try CompletionBody(json: [UInt8](request.body), chat: chat)
        } catch {
            return sendError(connection, status: 400, error.description, type: "invalid_request_error")
        }
        let generation: GenerationRequest
        switch generationRequest(body) {
        case .success(let g): generation = g
        case .failure(let e): return sendError(connection, status: e.status, e.message, type: "invalid_request_error", code: e.code)
        }
        let reply = ReplyWriter(connection: connection, chat: chat, id: (chat ? "chatcmpl-" : "cmpl-") + String(requestCounter.next()),
                                created: Int(Date().timeIntervalSince1970), model: modelID,
                                stream: body.stream, includeUsage: body.includeUsage)
        // The task only moves events into a queue; this thread writes them (blocking socket writes
        // never occupy Swift's cooperative threads) and watches the client between events: a closed
        // connection or a failed write cancels the generation.
        let queue = EventQueue()
        let stream = engine.generate(generation)
        let task = Task {
            do {
                for try await event in stream { queue.push(event) }
                queue.finish(nil)
            } catch {
                queue.finish(error)
            }
        }
        var lastCheck = ContinuousClock.now
        let delivered = reply.run { () -> EventQueue.Next in
            while true {
                let next = queue.pop(timeout: Self.disconnectPollSeconds)
                if ContinuousClock.now - lastCheck >= .milliseconds(Int(Self.disconnectPollSeconds * 1000)) {
                    lastCheck = ContinuousClock.now
                    if connection.peerHasClosed() { return .end(nil) }
                }
                if case .none = next { continue }
                return next
            }
        }
        if !delivered { task.cancel() }
    }
}

/// Events handed from a generating task to the thread that writes them.
final class EventQueue: @unchecked Sendable {  // guarded by `condition`
    enum Next {
        case event(GenerationEvent)
        /// The stream ended, with its error if any.
        case end((any Error)?)
        /// Nothing arrived within the timeout.
        case none
    }

    private let condition = NSCondition()
    private var events: [GenerationEvent] = []
    private var head = 0
    private var ended = false
    private var error: (any Error)?

    func push(_ event: GenerationEvent) {
        condition.lock()
        events.append(event)
        condition.signal()
        condition.unlock()
    }

    func finish(_ error: (any Error)?) {
        condition.lock()
        ended = true
        self.error = error
        condition.signal()
        condition.unlock()
    }

    func pop(timeout: Double) -> Next {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while head == events.count && !ended {
            if !condition.wait(until: deadline) { break }
        }
        if head < events.count {
            let event = events[head]
            head += 1
            if head > 64 && head * 2 > events.count { events.removeFirst(head); head = 0 }
            return .event(event)
        }
        return ended ? .end(error) : .none
    }
}

/// Numbers responses (`chatcmpl-1`, `chatcmpl-2`, ...).
final class RequestCounter: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
}

/// Turns one generation's events into a JSON response or a server-sent-event stream.
struct ReplyWriter {
    let connection: HTTPConnection
    let chat: Bool
    let id: String
    let created: Int
    let model: String
    let stream: Bool
    let includeUsage: Bool

    /// Writes the reply as `next` delivers events; false when the client went away first
    /// (`next` returns `.end(nil)` without a summary, or a write failed).
    func run(_ next: () -> EventQueue.Next) -> Bool {
        var text = ""
        var summary: GenerationSummary?
        if stream {
            guard connection.startEventStream() else { return false }
            if chat { guard send(chunk(delta: .init(role: "assistant", content: ""), finish: nil)) else { return false } }
        }
        reading: while true {
            switch next() {
            case .event(.token(_, let piece)):
                text += piece
                if stream, !piece.isEmpty, !send(chunk(content: piece, finish: nil)) { return false }
            case .event(.finished(let s)):
                summary = s
            case .end(nil), .none:
                break reading
            case .end(let error?):
                let clientError: Bool
                switch error {
                case GenerationError.computeFailed, GenerationError.engineStopped: clientError = false
                default: clientError = true
                }
                let body = OpenAI.ErrorBody(error: .init(message: "\(error)", type: clientError ? "invalid_request_error" : "server_error"))
                if stream {
                    _ = connection.sendEvent(OpenAI.encode(body))
                } else {
                    connection.send(HTTPResponse(status: clientError ? 400 : 500, body: OpenAI.encode(body)))
                }
                return true
            }
        }
        guard let summary else { return false }  // the client is gone
        let finish = OpenAI.finishReason(summary.finishReason)
        let usage = OpenAI.Usage(summary)
        if stream {
            guard send(chunk(content: nil, finish: finish)) else { return false }
            if includeUsage {
                guard send(OpenAI.Completion(id: id, object: objectName, created: created, model: model, choices: [], usage: usage)) else { return false }
            }
            _ = connection.sendEvent(Data("[DONE]".utf8))
        } else {
            let choice = chat ? OpenAI.Choice(message: .init(role: "assistant", content: text), finishReason: finish)
                              : OpenAI.Choice(text: text, finishReason: finish)
            let body = OpenAI.Completion(id: id, object: chat ? "chat.completion" : "text_completion", created: created,
                                         model: model, choices: [choice], usage: usage)
            connection.send(HTTPResponse(status: 200, body: OpenAI.encode(body)))
        }
        return true
    }

    private var objectName: String { chat ? "chat.completion.chunk" : "text_completion" }

    private func chunk(content: String?, finish: String?) -> OpenAI.Completion {
        chunk(delta: chat ? .init(content: content) : nil, text: chat ? nil : content ?? "", finish: finish)
    }

    private func chunk(delta: OpenAI.ChatMessageBody?, text: String? = nil, finish: String?) -> OpenAI.Completion {
        OpenAI.Completion(id: id, object: objectName, created: created, model: model,
                          choices: [OpenAI.Choice(delta: delta, text: text, finishReason: finish)], usage: nil)
    }

    private func send(_ value: OpenAI.Completion) -> Bool { connection.sendEvent(OpenAI.encode(value)) }
}
