import Dispatch
import Foundation
import HARP
import HARPCommandLine
import HARPServer

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
        let server = try OpenAIServer(engine: engine, modelID: modelID).listen(host: host, port: port, limits: limits)
        Output.status("serving \(modelID) on http://\(host):\(server.port) (\(parallel) sequences × \(context) tokens; max_tokens default min(\(OpenAIServer.defaultMaxTokens), context left))\n")
        server.serve()
    }
}
