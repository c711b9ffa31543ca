import CKernels
import Foundation

/// The threads (and their scratch memory) the kernels run on. One pool serves one forward pass
/// at a time; each engine owns its own, so nothing is process-global.
public final class ComputePool: @unchecked Sendable {  // used by one forward pass at a time, by contract
    let raw: OpaquePointer
    public let threadCount: Int

    /// `threads` defaults to the number of cores available to the process.
    public init(threads: Int? = nil) {
        let n = max(1, threads ?? ComputePool.defaultThreadCount)
        raw = hk_pool_create(Int32(n))
        threadCount = Int(hk_pool_threads(raw))
    }

    deinit { hk_pool_destroy(raw) }

    public static var defaultThreadCount: Int { ProcessInfo.processInfo.activeProcessorCount }
}
