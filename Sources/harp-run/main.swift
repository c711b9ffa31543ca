import Foundation
import HARP
import HARPCommandLine

/// `harp-run COMMAND [options]`: the command-line front end of the HARP runtime.
let commands: [(spec: CommandSpec, run: (ParsedArguments) throws -> Void)] = [
    (TokenizeCommand.spec, TokenizeCommand.run),
    (GenerateCommand.spec, GenerateCommand.run),
    (PerplexityCommand.spec, PerplexityCommand.run),
    (InspectCommand.spec, InspectCommand.run),
    (BenchCommand.spec, BenchCommand.run),
    (ChatCommand.spec, ChatCommand.run),
    (ServeCommand.spec, ServeCommand.run),
    (EvalCommand.spec, EvalCommand.run),
]

func usage(_ commands: [(spec: CommandSpec, run: (ParsedArguments) throws -> Void)]) -> String {
    var lines = ["usage: harp-run COMMAND [options]   (harp-run COMMAND --help for details)", "", "commands:"]
    for (spec, _) in commands { lines.append("  " + spec.name.padding(toLength: 12, withPad: " ", startingAt: 0) + spec.summary) }
    return lines.joined(separator: "\n")
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, !["-h", "--help", "help"].contains(name) else {
    print(usage(commands))
    exit(arguments.isEmpty ? 2 : 0)
}
guard let command = commands.first(where: { $0.spec.name == name }) else {
    Output.error("unknown command '\(name)'\n\(usage(commands))")
    exit(2)
}
do {
    let parsed = try ParsedArguments(Array(arguments.dropFirst()), spec: command.spec)
    if parsed.helpRequested {
        print(command.spec.help)
        exit(0)
    }
    try command.run(parsed)
} catch let error as HARPError {
    Output.error(error.description)
    exit(1)
} catch {
    Output.error("\(error)")
    exit(1)
}
