import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file written completely under a temporary name beside its destination (`.NAME.PID.tmp`),
/// flushed to disk, and renamed over the destination only by `commit()` — so a reader never sees
/// a half-written file and a failed or interrupted write leaves the destination untouched.
/// Until it is committed the temporary is registered with `TemporaryFiles`, which removes it on
/// SIGINT/SIGTERM, and it is removed when the value is discarded or released.
public final class StagedFile: @unchecked Sendable {  // used by one thread; the registry is locked
    public let destination: String
    public let temporaryPath: String
    private var done = false

    public init(bytes: [UInt8], destination: String) throws {
        self.destination = destination
        temporaryPath = TemporaryFiles.temporaryPath(for: destination)
        TemporaryFiles.register(temporaryPath)
        do {
            try bytes.withUnsafeBytes { try StagedFile.writeNew(temporaryPath, $0) }
        } catch {
            unlink(temporaryPath)
            TemporaryFiles.unregister(temporaryPath)
            throw error
        }
    }

    public convenience init(data: Data, destination: String) throws {
        try self.init(bytes: [UInt8](data), destination: destination)
    }

    /// Renames the temporary over the destination.
    public func commit() throws {
        guard !done else { return }
        guard rename(temporaryPath, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            discard()
            throw HARPError.io(path: destination, reason: "cannot rename \(temporaryPath) into place: \(reason)")
        }
        done = true
        TemporaryFiles.unregister(temporaryPath)
    }

    /// Removes the temporary without touching the destination.
    public func discard() {
        guard !done else { return }
        done = true
        unlink(temporaryPath)
        TemporaryFiles.unregister(temporaryPath)
    }

    deinit { discard() }

    private static func writeNew(_ path: String, _ bytes: UnsafeRawBufferPointer) throws {
        func failure(_ what: String) -> HARPError { .io(path: path, reason: "\(what): \(String(cString: strerror(errno)))") }
        unlink(path)  // our own name (this process id); never follow a link planted there
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create file") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw failure("write failed after \(written) of \(bytes.count) bytes") }
            written += n
        }
        guard fsync(fd) == 0 else { throw failure("fsync failed") }
    }
}

/// Temporary files of `StagedFile` that must not outlive the process.
public enum TemporaryFiles {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var live: Set<String> = []
    nonisolated(unsafe) private static var signalSources: [DispatchSourceSignal] = []

    /// `.NAME.PID.tmp` beside `destination`.
    public static func temporaryPath(for destination: String) -> String {
        let url = URL(fileURLWithPath: destination)
        return url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp").path
    }

    static func register(_ path: String) { lock.withLock { _ = live.insert(path) } }
    static func unregister(_ path: String) { lock.withLock { _ = live.remove(path) } }

    /// Paths currently registered (tests).
    public static var registered: Set<String> { lock.withLock { live } }

    /// On SIGINT or SIGTERM, removes every registered temporary and exits with 128 + the signal.
    /// The handler runs on a dispatch queue, not in signal context, so it may take the lock even
    /// while the main thread is in the middle of a write.
    public static func removeOnTermination() {
        lock.withLock {
            guard signalSources.isEmpty else { return }
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    let paths = lock.withLock { live }
                    for path in paths { unlink(path) }
                    _exit(128 + sig)
                }
                source.resume()
                signalSources.append(source)
            }
        }
    }

    /// Temporaries of `destination` left by processes that no longer run (a killed earlier write):
    /// removes them and returns their paths. Those of a running process (another write of the same
    /// file) are left alone.
    public static func removeStale(for destination: String) -> [String] {
        let url = URL(fileURLWithPath: destination)
        let directory = url.deletingLastPathComponent().path
        let prefix = ".\(url.lastPathComponent).", suffix = ".tmp"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(suffix) && name.count > prefix.count + suffix.count {
            let middle = name.dropFirst(prefix.count).dropLast(suffix.count)
            guard let pid = Int32(middle), pid > 0, pid != getpid() else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            let path = (directory as NSString).appendingPathComponent(name)
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed.sorted()
    }
}
