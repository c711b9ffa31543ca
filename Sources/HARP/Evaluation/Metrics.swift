import Foundation

/// One reported figure: a value and its standard error (nil when it has none).
public struct Metric: Sendable, Equatable, Codable {
    public var name: String
    public var value: Double
    public var standardError: Double?

    public init(_ name: String, _ value: Double, standardError: Double? = nil) {
        self.name = name
        self.value = value
        self.standardError = standardError
    }
}

/// The result of one task over the items it scored.
public struct TaskResult: Sendable, Equatable, Codable {
    public var task: String
    public var metrics: [Metric]
    public var items: Int
    public var seconds: Double

    public init(task: String, metrics: [Metric], items: Int, seconds: Double) {
        self.task = task
        self.metrics = metrics
        self.items = items
        self.seconds = seconds
    }

    public func value(_ name: String) -> Double? { metrics.first { $0.name == name }?.value }
}

public enum Statistics {
    /// Share of `true`, with lm-eval's standard error sqrt(p(1−p)/(n−1)).
    public static func accuracy(_ name: String, _ hits: [Bool]) -> Metric {
        let n = hits.count
        guard n > 0 else { return Metric(name, 0, standardError: nil) }
        let p = Double(hits.filter { $0 }.count) / Double(n)
        return Metric(name, p, standardError: n > 1 ? (p * (1 - p) / Double(n - 1)).squareRoot() : nil)
    }

    /// Mean and standard error of the mean (sample standard deviation / sqrt(n)).
    public static func mean(_ values: [Double]) -> (mean: Double, standardError: Double?) {
        let n = Double(values.count)
        guard n > 0 else { return (0, nil) }
        let m = values.reduce(0, +) / n
        guard n > 1 else { return (m, nil) }
        let variance = values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)
        return (m, (variance / n).squareRoot())
    }

    /// llama.cpp's percentile: linear interpolation between the sorted values around fraction·(n−1).
    public static func percentile(sorted values: [Double], _ fraction: Double) -> Double {
        guard let first = values.first, let last = values.last else { return 0 }
        if fraction <= 0 { return first }
        if fraction >= 1 { return last }
        let p = fraction * Double(values.count - 1)
        let i = Int(p)
        let t = p - Double(i)
        return (1 - t) * values[i] + t * values[min(i + 1, values.count - 1)]
    }

    /// Index of the largest value, the first on ties.
    public static func argmax(_ values: [Double]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
