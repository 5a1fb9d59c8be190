package dev.edgelight.benchcore

import kotlin.math.floor
import kotlin.math.sqrt

/**
 * Latency summary in milliseconds, the `latency_ms` object of bench_record.schema.json.
 *
 * Rules (the same as the host's edgelight/bench/stats.py, so host and phone numbers compare):
 * - std is the sample standard deviation (divide by n - 1, numpy `std(ddof=1)`), hence at least 2 runs;
 * - percentiles interpolate linearly between the two nearest ranks: for q in [0, 100] over the
 *   sorted samples x[0..n-1], h = (n - 1) * q / 100 and p = x[floor(h)] + (h - floor(h)) * (x[floor(h)+1] - x[floor(h)])
 *   (numpy `percentile(method="linear")`, R type 7).
 * - `first` is the first inference after load, which is kept out of the timed runs; warm-up runs are
 *   not timed either.
 */
data class LatencyStats(
    val load: Double,
    val first: Double,
    val mean: Double,
    val std: Double,
    val p50: Double,
    val p90: Double,
    val p99: Double,
    val min: Double,
    val max: Double,
    val runs: Int,
    val warmup: Int
) {
    fun toJsonMap(): Map<String, Any?> = linkedMapOf(
        "load" to load, "first" to first, "mean" to mean, "std" to std,
        "p50" to p50, "p90" to p90, "p99" to p99, "min" to min, "max" to max,
        "runs" to runs, "warmup" to warmup
    )

    companion object {
        fun of(loadMs: Double, firstMs: Double, samplesMs: List<Double>, warmup: Int): LatencyStats {
            require(samplesMs.size >= 2) { "need at least 2 timed runs, got ${samplesMs.size}" }
            require(samplesMs.all { it >= 0.0 && !it.isNaN() && !it.isInfinite() }) { "latencies must be finite and >= 0" }
            val sorted = samplesMs.sorted()
            return LatencyStats(
                load = loadMs,
                first = firstMs,
                mean = mean(sorted),
                std = sampleStd(sorted),
                p50 = percentile(sorted, 50.0),
                p90 = percentile(sorted, 90.0),
                p99 = percentile(sorted, 99.0),
                min = sorted.first(),
                max = sorted.last(),
                runs = samplesMs.size,
                warmup = warmup
            )
        }

        fun mean(values: List<Double>): Double = values.sum() / values.size

        /** Divides by n - 1 (numpy `std(ddof=1)`); needs at least 2 values. */
        fun sampleStd(values: List<Double>): Double {
            require(values.size >= 2) { "the sample standard deviation needs at least 2 values" }
            val m = mean(values)
            val squares = values.map { (it - m) * (it - m) }.sum()
            return sqrt(squares / (values.size - 1))
        }

        /** Linear interpolation between closest ranks (numpy's default); [sorted] must be ascending. */
        fun percentile(sorted: List<Double>, q: Double): Double {
            require(sorted.isNotEmpty()) { "no samples" }
            require(q in 0.0..100.0) { "percentile must be in [0, 100], got $q" }
            val h = (sorted.size - 1) * q / 100.0
            val lower = floor(h).toInt()
            val upper = if (lower + 1 < sorted.size) lower + 1 else lower
            return sorted[lower] + (h - lower) * (sorted[upper] - sorted[lower])
        }

        fun nanosToMillis(nanos: Long): Double = nanos / 1_000_000.0
    }
}
