import Foundation
import HARP

/// Every file a pruning run will write, resolved and checked before any work: no output may be
/// an input (the model, the calibration text) or another output under any spelling, symlink or
/// hard link; none may be a directory or sit in a directory that does not exist or cannot be
/// written. The files are then staged (written under temporary names, the models reloaded to
/// prove they load) and published together by `commit`, so a refused or interrupted run changes
/// none of the user's files.
public struct OutputPlan {
    /// A path with the option that named it, for messages.
    public struct Entry: Sendable, Equatable {
        public var option: String
        public var path: String
        public init(_ option: String, _ path: String) {
            self.option = option
            self.path = path
        }
        var named: String { "\(option) '\(path)'" }
    }

    public let inputs: [Entry]
    public let outputs: [Entry]

    /// What makes two paths the same file: device and inode when it exists, else the canonical path.
    enum Identity: Hashable {
        case inode(device: UInt64, inode: UInt64)
        case path(String)
    }

    public init(inputs: [Entry], outputs: [Entry]) throws {
        var seen: [(Entry, Identity, isInput: Bool)] = []
        for input in inputs {
            var st = stat()
            guard stat(input.path, &st) == 0 else {
                throw HARPError.io(path: input.path, reason: "\(input.option): \(String(cString: strerror(errno)))")
            }
            seen.append((input, .inode(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)), true))
        }
        for output in outputs {
            let identity = try OutputPlan.outputIdentity(output)
            if let (other, _, isInput) = seen.first(where: { $0.1 == identity }) {
                if isInput {
                    throw HARPError.invalidArgument("\(output.named) is the same file as the input \(other.named); harp-prune never overwrites its input")
                }
                throw HARPError.invalidArgument("\(output.named) and \(other.named) are the same file; each output needs its own")
            }
            seen.append((output, identity, false))
        }
        self.inputs = inputs
        self.outputs = outputs
    }

    static func outputIdentity(_ output: Entry) throws -> Identity {
        func refuse(_ reason: String) -> HARPError { .invalidArgument("\(output.named): \(reason)") }
        guard !output.path.isEmpty else { throw refuse("empty path") }
        let url = URL(fileURLWithPath: output.path)
        var st = stat()
        if stat(output.path, &st) == 0 {
            guard (st.st_mode & S_IFMT) != S_IFDIR else { throw refuse("is a directory") }
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw refuse("exists and is not a regular file") }
        }
        let parent = url.deletingLastPathComponent().path
        guard let resolved = realpath(parent, nil) else {
            throw refuse("directory '\(parent)' does not exist")
        }
        let directory = String(cString: resolved)
        free(resolved)
        var dst = stat()
        guard stat(directory, &dst) == 0, (dst.st_mode & S_IFMT) == S_IFDIR else { throw refuse("'\(parent)' is not a directory") }
        guard access(directory, W_OK | X_OK) == 0 else { throw refuse("directory '\(parent)' is not writable") }
        if stat(output.path, &st) == 0 {
            return .inode(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
        }
        return .path((directory as NSString).appendingPathComponent(url.lastPathComponent))
    }

    /// Removes temporaries a killed earlier run left beside the outputs and returns their paths.
    public func removeStaleTemporaries() -> [String] {
        outputs.flatMap { TemporaryFiles.removeStale(for: $0.path) }
    }

    func entry(for path: String) throws -> Entry {
        guard let entry = outputs.first(where: { $0.path == path }) else {
            throw HARPError.invalidArgument("internal: \(path) is not a planned output")
        }
        return entry
    }

    /// Writes `model` under a temporary name beside `path` (a planned output) and loads it back:
    /// a result the runtime would refuse (no layers, a layout that cannot hold it) is an error
    /// here, before any output is published.
    public func stageModel(_ model: Model, to path: String, layout: ModelLayout, type: GGMLType?,
                           extraMetadata: [(String, GGUFValue)]) throws -> StagedFile {
        let entry = try entry(for: path)
        let staged: StagedFile
        do {
            let writer = try ModelWriter.makeWriter(model, layout: layout, type: type, extraMetadata: extraMetadata)
            staged = try writer.stage(to: path)
        } catch let error as HARPError {
            throw HARPError.invalidArgument("\(entry.named): cannot write the pruned model: \(error.description)")
        }
        do {
            _ = try Model(path: staged.temporaryPath)
        } catch let error as HARPError {
            staged.discard()
            throw HARPError.invalidArgument("\(entry.named): the pruned model would not load (\(error.description)); nothing was written")
        }
        return staged
    }

    public func stage(_ data: Data, to path: String) throws -> StagedFile {
        _ = try entry(for: path)
        return try StagedFile(data: data, destination: path)
    }

    /// Publishes staged files (each renamed over its destination).
    public func commit(_ files: [StagedFile]) throws {
        for file in files { try file.commit() }
    }
}
