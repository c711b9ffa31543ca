import HARP

/// A command-line option: `-m`/`--model VALUE`, or a flag when `value` is nil.
public struct OptionSpec: Sendable {
    public var names: [String]
    public var value: String?
    public var help: String
    public var key: String { names.last ?? "" }

    public init(names: [String], value: String?, help: String) {
        self.names = names
        self.value = value
        self.help = help
    }
}

/// A command's interface (a subcommand of `program`, or the program itself when `name` is
/// empty), used both to parse and to print `--help`.
public struct CommandSpec: Sendable {
    public var program: String
    public var name: String
    public var summary: String
    public var usage: String
    public var options: [OptionSpec]

    public init(program: String, name: String, summary: String, usage: String, options: [OptionSpec]) {
        self.program = program
        self.name = name
        self.summary = summary
        self.usage = usage
        self.options = options
    }

    /// How the user invokes this command: `harp-run bench`, `harp-prune`.
    public var invocation: String { name.isEmpty ? program : "\(program) \(name)" }

    public var help: String {
        var lines = ["usage: \(program) \(usage)", "", summary, "", "options:"]
        for o in options + [OptionSpec(names: ["-h", "--help"], value: nil, help: "show this help")] {
            let left = o.names.joined(separator: ", ") + (o.value.map { " \($0)" } ?? "")
            lines.append("  " + left.padding(toLength: max(left.count + 2, 26), withPad: " ", startingAt: 0) + o.help)
        }
        return lines.joined(separator: "\n")
    }
}

/// What the user typed for one subcommand, checked against its spec.
public struct ParsedArguments {
    public let command: String
    private var values: [String: String] = [:]
    private var repeatedValues: [String: [String]] = [:]
    private var flags: Set<String> = []
    public private(set) var positionals: [String] = []
    public private(set) var helpRequested = false

    public init(_ args: [String], spec: CommandSpec) throws {
        command = spec.invocation
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
                throw HARPError.invalidArgument("unknown option \(name) for '\(spec.invocation)' (see \(spec.invocation) --help)")
            }
            if option.value == nil {
                guard inlineValue == nil else { throw HARPError.invalidArgument("option \(name) takes no value") }
                flags.insert(option.key)
            } else if let inlineValue {
                values[option.key] = inlineValue
                repeatedValues[option.key, default: []].append(inlineValue)
            } else {
                guard i < args.count else { throw HARPError.invalidArgument("option \(name) needs a value (\(option.value ?? ""))") }
                values[option.key] = args[i]
                repeatedValues[option.key, default: []].append(args[i])
                i += 1
            }
        }
    }

    public func flag(_ key: String) -> Bool { flags.contains(key) }

    public func string(_ key: String) -> String? { values[key] }

    /// Every value of an option given several times, in order (`string` returns the last).
    public func strings(_ key: String) -> [String] { repeatedValues[key] ?? [] }

    public func int(_ key: String, default fallback: Int, range: ClosedRange<Int>? = nil) throws -> Int {
        guard let text = values[key] else { return fallback }
        guard let v = Int(text) else { throw HARPError.invalidArgument("option \(key): expected an integer, got '\(text)'") }
        if let range, !range.contains(v) {
            throw HARPError.invalidArgument("option \(key): \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    public func optionalInt(_ key: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        values[key] == nil ? nil : try int(key, default: 0, range: range)
    }

    public func float(_ key: String, default fallback: Float, range: ClosedRange<Float>? = nil) throws -> Float {
        guard let text = values[key] else { return fallback }
        guard let v = Float(text), v.isFinite else { throw HARPError.invalidArgument("option \(key): expected a number, got '\(text)'") }
        if let range, !range.contains(v) {
            throw HARPError.invalidArgument("option \(key): \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, default fallback: T) throws -> T where T.RawValue == String {
        guard let text = values[key] else { return fallback }
        guard let v = T(rawValue: text.lowercased()) else {
            throw HARPError.invalidArgument("option \(key): '\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return v
    }

    /// The single positional argument, or an error naming what is missing.
    public func onePositional(_ what: String) throws -> String {
        guard positionals.count == 1 else {
            throw HARPError.invalidArgument(positionals.isEmpty ? "missing \(what)" : "expected one \(what), got \(positionals.count) arguments (quote the text)")
        }
        return positionals[0]
    }

    public func noPositionals() throws {
        guard positionals.isEmpty else { throw HARPError.invalidArgument("unexpected argument '\(positionals[0])' for '\(command)'") }
    }
}
