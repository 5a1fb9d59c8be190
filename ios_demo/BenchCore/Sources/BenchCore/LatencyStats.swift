import Foundation

/// Latency summary in milliseconds, the `latency_ms` object of bench_record.schema.json.
///
/// Same rules as the host (edgelight/bench/stats.py) and the Android benchcore: sample standard deviation
/// (divide by n - 1, numpy ddof=1) and percentiles by linear interpolation between the closest ranks,
/// h = (n - 1) * q / 100 (numpy's default).
public struct LatencyStats: Codable, Equatable {
    public let load: Double
    public let first: Double
    public let mean: Double
    public let std: Double
    public let p50: Double
    public let p90: Double
    public let p99: Double
    public let min: Double
    public let max: Double
    public let runs: Int
    public let warmup: Int

    // keys: latency
    enum CodingKeys: String, CodingKey {
        case load = "load", first = "first", mean = "mean", std = "std", p50 = "p50", p90 = "p90", p99 = "p99"
        case min = "min", max = "max", runs = "runs", warmup = "warmup"
    }
    // end keys

    public static func of(loadMs: Double, firstMs: Double, samplesMs: [Double], warmup: Int) throws -> LatencyStats {
        guard samplesMs.count >= 2 else { throw PlanError("need at least 2 timed runs, got \(samplesMs.count)") }
        guard samplesMs.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw PlanError("latencies must be finite and >= 0") }
        let sorted = samplesMs.sorted()
        let mean = sorted.reduce(0, +) / Double(sorted.count)
        let variance = sorted.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(sorted.count - 1)
        return LatencyStats(
            load: loadMs, first: firstMs, mean: mean, std: variance.squareRoot(),
            p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99),
            min: sorted[0], max: sorted[sorted.count - 1], runs: samplesMs.count, warmup: warmup
        )
    }

    /// Linear interpolation between the closest ranks (numpy's default); `sorted` must be ascending.
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        precondition(!sorted.isEmpty && q >= 0 && q <= 100)
        let h = Double(sorted.count - 1) * q / 100
        let lower = Int(h.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        return sorted[lower] + (h - Double(lower)) * (sorted[upper] - sorted[lower])
    }

    public static func millis(nanos: UInt64) -> Double { Double(nanos) / 1_000_000 }
}
