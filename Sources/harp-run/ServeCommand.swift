import Dispatch
import Foundation
import HARP
import HARPCommandLine

/// `harp-run serve`: an OpenAI-compatible HTTP server over one engine; concurrent requests share
/// its batched decoder.
enum ServeCommand {
    static let spec = CommandSpec(
        name: "serve", summary: "OpenAI-compatible HTTP server (chat/completions, completions, models, health)",
        usage: "serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [--parallel 4] [-c 2048]",
        options: CommonOptions.all + [
            OptionSpec(names: ["--host"], value: "ADDR", help: "IPv4 address to listen on (default 127.0.0.1)"),
            OptionSpec(names: ["--port"], value: "P", help: "port (default 8080; 0 = any free port, printed at start)"),
            OptionSpec(names: ["--parallel"], value: "N", help: "sequences decoded together; more requests wait (default 4)"),
            OptionSpec(names: ["-c", "--ctx-size"], value: "N", help: "context length of each sequence (default 2048)"),
            OptionSpec(names: ["--kv-type"], value: "TYPE", help: "KV cache element type: f16 (default) or f32"),
            OptionSpec(names: ["--max-body"], value: "BYTES", help: "largest request body accepted (default 1048576)"),
        ])

    static func run(_ args: ParsedArguments) throws {
        try args.noPositionals()
        let host = args.string("--host") ?? "127.0.0.1"
        let port = try args.int("--port", default: 8080, range: 0...65535)
        let parallel = try args.int("--parallel", default: 4, range: 1...64)
        let kvType: KVCacheType = try args.choice("--kv-type", default: .f16)
        var limits = HTTPServer.Limits()
        limits.maxBodyBytes = try args.int("--max-body", default: limits.maxBodyBytes, range: 1024...(1 << 30))
        let loaded = try LoadedModel(args)
        let context = try args.int("--ctx-size", default: min(loaded.model.config.contextLength, 2048), range: 16...1_048_576)
        let template = ChatTemplate.load(from: loaded.model.file, tokenizer: loaded.tokenizer)
        if let notice = template.notice { Output.status("note: \(notice)\n") }
        let engine = try Engine(transformer: loaded.transformer, tokenizer: loaded.tokenizer, chatTemplate: template,
                                configuration: EngineConfiguration(maxConcurrentSequences: parallel, contextLength: context,
                                                                   kvType: kvType, stepTokenBudget: max(256, parallel + 1)))
        let modelID = URL(fileURLWithPath: loaded.model.path).deletingPathExtension().lastPathComponent
        let api = OpenAIServer(engine: engine, modelID: modelID)
        let server = try HTTPServer(host: host, port: port, limits: limits) { request, connection in api.handle(request, connection) }
        Output.status("serving \(modelID) on http://\(host):\(server.port) (\(parallel) sequences × \(context) tokens)\n")
        server.serve()
    }
}

/// Routes requests to the engine and writes OpenAI-shaped answers.
struct OpenAIServer: Sendable {
    let engine: Engine
    let modelID: String
    let created = Int(Date().timeIntervalSince1970)
    private let requestCounter = RequestCounter()

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

    private func complete(_ request: HTTPRequest, _ connection: HTTPConnection, chat: Bool) {
        let prompt: Prompt
        let fields: OpenAI.SamplingFields
        do {
            if chat {
                let body = try OpenAI.decoder.decode(OpenAI.ChatRequest.self, from: request.body)
                prompt = .chat(try body.messages.map(chatMessage))
                fields = body.fields
            } else {
                let body = try OpenAI.decoder.decode(OpenAI.CompletionRequest.self, from: request.body)
                prompt = .text(body.prompt)
                fields = body.fields
            }
        } catch let error as RequestError {
            return sendError(connection, status: 400, error.message, type: "invalid_request_error")
        } catch {
            return sendError(connection, status: 400, OpenAI.describe(error), type: "invalid_request_error")
        }
        if let model = fields.model, model != modelID, model != modelID + ".gguf" {
            return sendError(connection, status: 404, "model '\(model)' does not exist; this server has '\(modelID)'",
                             type: "invalid_request_error", code: "model_not_found")
        }
        let generation: GenerationRequest
        let promptTokens: Int
        do {
            generation = try generationRequest(prompt, fields)
            promptTokens = try engine.promptTokens(prompt).count
        } catch {
            return sendError(connection, status: 400, "\(error)", type: "invalid_request_error")
        }
        if promptTokens >= engine.configuration.contextLength {
            return sendError(connection, status: 400, "\(GenerationError.promptTooLong(promptTokens: promptTokens, contextLength: engine.configuration.contextLength))",
                             type: "invalid_request_error", code: "context_length_exceeded")
        }
        let reply = ReplyWriter(connection: connection, chat: chat, id: (chat ? "chatcmpl-" : "cmpl-") + String(requestCounter.next()),
                                created: Int(Date().timeIntervalSince1970), model: modelID,
                                stream: fields.stream ?? false, includeUsage: fields.streamOptions?.includeUsage ?? false,
                                stops: fields.stop?.values ?? [])
        let done = DispatchSemaphore(value: 0)
        let stream = engine.generate(generation)
        Task {
            await reply.run(stream)
            done.signal()
        }
        done.wait()
    }

    private func chatMessage(_ m: OpenAI.Message) throws -> ChatMessage {
        switch m.role {
        case "system", "developer": return .system(m.content)
        case "user": return .user(m.content)
        case "assistant": return .assistant(m.content)
        default: throw RequestError(message: "messages: role '\(m.role)' is not supported (system, user, assistant)")
        }
    }

    private func generationRequest(_ prompt: Prompt, _ f: OpenAI.SamplingFields) throws -> GenerationRequest {
        if let n = f.n, n != 1 { throw RequestError(message: "n: only one choice per request is supported") }
        var p = SamplingParameters()
        p.temperature = f.temperature ?? p.temperature
        p.topP = f.topP ?? p.topP
        p.topK = f.topK ?? p.topK
        p.minP = f.minP ?? p.minP
        p.frequencyPenalty = f.frequencyPenalty ?? p.frequencyPenalty
        p.presencePenalty = f.presencePenalty ?? p.presencePenalty
        p.repetitionPenalty = f.repeatPenalty ?? p.repetitionPenalty
        p.seed = f.seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max)
        try p.validate()
        let maxTokens = f.maxCompletionTokens ?? f.maxTokens ?? engine.configuration.contextLength
        guard maxTokens > 0 else { throw RequestError(message: "max_tokens must be positive, got \(maxTokens)") }
        return GenerationRequest(prompt: prompt, maxTokens: maxTokens, sampling: p)
    }
}

struct RequestError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Numbers responses (`chatcmpl-1`, `chatcmpl-2`, ...).
final class RequestCounter: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
}

/// Turns one generation stream into a JSON response or a server-sent-event stream.
struct ReplyWriter: Sendable {
    let connection: HTTPConnection
    let chat: Bool
    let id: String
    let created: Int
    let model: String
    let stream: Bool
    let includeUsage: Bool
    let stops: [String]

    func run(_ events: AsyncThrowingStream<GenerationEvent, any Error>) async {
        var filter = StopSequenceFilter(stops)
        var text = ""
        var summary: GenerationSummary?
        if stream {
            guard connection.startEventStream() else { return }
            if chat { guard send(chunk(delta: .init(role: "assistant", content: ""), finish: nil)) else { return } }
        }
        do {
            for try await event in events {
                switch event {
                case .token(_, let piece):
                    let safe = filter.feed(piece)
                    text += safe
                    // Leaving the loop drops the stream, which cancels the generation.
                    if stream, !safe.isEmpty, !send(chunk(content: safe, finish: nil)) { return }
                case .finished(let s):
                    summary = s
                }
                if filter.stopped { break }
            }
        } catch {
            let body = OpenAI.ErrorBody(error: .init(message: "\(error)", type: "server_error"))
            if stream { _ = connection.sendEvent(OpenAI.encode(body)) } else { connection.send(HTTPResponse(status: 500, body: OpenAI.encode(body))) }
            return
        }
        let tail = filter.finish()
        text += tail
        let finish = filter.stopped ? "stop" : summary.map { OpenAI.finishReason($0.finishReason) } ?? "stop"
        let usage = summary.map(OpenAI.Usage.init)
        if stream {
            if !tail.isEmpty, !send(chunk(content: tail, finish: nil)) { return }
            guard send(chunk(content: nil, finish: finish)) else { return }
            if includeUsage, let usage {
                guard send(OpenAI.Completion(id: id, object: objectName, created: created, model: model, choices: [], usage: usage)) else { return }
            }
            _ = connection.sendEvent(Data("[DONE]".utf8))
        } else {
            let choice = chat ? OpenAI.Choice(message: .init(role: "assistant", content: text), finishReason: finish)
                              : OpenAI.Choice(text: text, finishReason: finish)
            let body = OpenAI.Completion(id: id, object: chat ? "chat.completion" : "text_completion", created: created,
                                         model: model, choices: [choice], usage: usage)
            connection.send(HTTPResponse(status: 200, body: OpenAI.encode(body)))
        }
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
