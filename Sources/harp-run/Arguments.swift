import HARP

/// A command-line option: `-m`/`--model VALUE`, or a flag when `value` is nil.
struct OptionSpec {
    var names: [String]
    var value: String?
    var help: String
    var key: String { names.last ?? "" }
}

/// A subcommand's interface, used both to parse and to print `--help`.
struct CommandSpec {
    var name: String
    var summary: String
    var usage: String
    var options: [OptionSpec]

    var help: String {
        var lines = ["usage: harp-run \(usage)", "", summary, "", "options:"]
        for o in options + [OptionSpec(names: ["-h", "--help"], value: nil, help: "show this help")] {
            let left = o.names.joined(separator: ", ") + (o.value.map { " \($0)" } ?? "")
            lines.append("  " + left.padding(toLength: max(left.count + 2, 26), withPad: " ", startingAt: 0) + o.help)
        }
        return lines.joined(separator: "\n")
    }
}

/// What the user typed for one subcommand, checked against its spec.
struct ParsedArguments {
    let command: String
    private var values: [String: String] = [:]
    private var flags: Set<String> = []
    private(set) var positionals: [String] = []
    private(set) var helpRequested = false

    init(_ args: [String], spec: CommandSpec) throws {
        command = spec.name
        var i = 0
        var onlyPositionals = false
        while i < args.count {
            let arg = args[i]
            i += 1
            if onlyPositionals || !arg.hasPrefix("-") || arg == "-" || Double(arg) != nil {
                positionals.append(arg)
                continue
            }
            if arg == "--" { onlyPositionals = true; continue }
            if arg == "-h" || arg == "--help" { helpRequested = true; continue }
            var name = arg, inlineValue: String?
            if arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                inlineValue = String(arg[arg.index(after: eq)...])
            }
            guard let option = spec.options.first(where: { $0.names.contains(name) }) else {
                throw HARPError.invalidArgument("unknown option \(name) for '\(spec.name)' (see harp-run \(spec.name) --help)")
            }
            if option.value == nil {
                guard inlineValue == nil else { throw HARPError.invalidArgument("option \(name) takes no value") }
                flags.insert(option.key)
            } else if let inlineValue {
                values[option.key] = inlineValue
            } else {
                guard i < args.count else { throw HARPError.invalidArgument("option \(name) needs a value (\(option.value ?? ""))") }
                values[option.key] = args[i]
                i += 1
            }
        }
    }

    func flag(_ key: String) -> Bool { flags.contains(key) }

    func string(_ key: String) -> String? { values[key] }

    func int(_ key: String, default fallback: Int, range: ClosedRange<Int>? = nil) throws -> Int {
        guard let text = values[key] else { return fallback }
        guard let v = Int(text) else { throw HARPError.invalidArgument("option \(key): expected an integer, got '\(text)'") }
        if let range, !range.contains(v) {
            throw HARPError.invalidArgument("option \(key): \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    func optionalInt(_ key: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        values[key] == nil ? nil : try int(key, default: 0, range: range)
    }

    func float(_ key: String, default fallback: Float, range: ClosedRange<Float>? = nil) throws -> Float {
        guard let text = values[key] else { return fallback }
        guard let v = Float(text), v.isFinite else { throw HARPError.invalidArgument("option \(key): expected a number, got '\(text)'") }
        if let range, !range.contains(v) {
            throw HARPError.invalidArgument("option \(key): \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) throws -> T where T.RawValue == String {
        guard let text = values[key] else { return fallback }
        guard let v = T(rawValue: text.lowercased()) else {
            throw HARPError.invalidArgument("option \(key): '\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }

    /// The single positional argument, or an error naming what is missing.
    func onePositional(_ what: String) throws -> String {
        guard positionals.count == 1 else {
            throw HARPError.invalidArgument(positionals.isEmpty ? "missing \(what)" : "expected one \(what), got \(positionals.count) arguments (quote the text)")
        }
        return positionals[0]
    }

    func noPositionals() throws {
        guard positionals.isEmpty else { throw HARPError.invalidArgument("unexpected argument '\(positionals[0])' for '\(command)'") }
    }
}

/// Options shared by every command that loads a model.
enum CommonOptions {
    static let model = OptionSpec(names: ["-m", "--model"], value: "FILE", help: "GGUF model file (default: \(defaultModelPath))")
    static let weights = OptionSpec(names: ["--weights"], value: "FORMAT", help: "native (as stored) or f32 (dequantize at load)")
    static let threads = OptionSpec(names: ["-t", "--threads"], value: "N", help: "compute threads (default: all cores)")
    static let all = [model, weights, threads]

    static let defaultModelPath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
}
