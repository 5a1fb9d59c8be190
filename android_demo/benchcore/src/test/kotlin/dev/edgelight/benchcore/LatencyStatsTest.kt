package dev.edgelight.benchcore

import org.junit.Assert.assertEquals
import org.junit.Assert.fail
import org.junit.Test

class LatencyStatsTest {
    private val eps = 1e-12

    @Test
    fun matchesTheHostStatistics() {
        // numpy: mean 2.5, std(ddof=1) sqrt(5/3), percentile(linear): p50 2.5, p90 3.7, p99 3.97
        val stats = LatencyStats.of(10.0, 5.0, listOf(4.0, 1.0, 3.0, 2.0), warmup = 2)
        assertEquals(2.5, stats.mean, eps)
        assertEquals(Math.sqrt(5.0 / 3.0), stats.std, eps)
        assertEquals(2.5, stats.p50, eps)
        assertEquals(3.7, stats.p90, eps)
        assertEquals(3.97, stats.p99, eps)
        assertEquals(1.0, stats.min, eps)
        assertEquals(4.0, stats.max, eps)
        assertEquals(4, stats.runs)
        assertEquals(2, stats.warmup)
        assertEquals(10.0, stats.load, eps)
        assertEquals(5.0, stats.first, eps)
    }

    @Test
    fun percentileEndpointsAreMinAndMax() {
        val sorted = listOf(0.5, 0.7, 2.0, 9.0, 11.0)
        assertEquals(0.5, LatencyStats.percentile(sorted, 0.0), eps)
        assertEquals(11.0, LatencyStats.percentile(sorted, 100.0), eps)
        assertEquals(2.0, LatencyStats.percentile(sorted, 50.0), eps)
        // h = 4 * 0.9 = 3.6 -> 9 + 0.6 * 2
        assertEquals(10.2, LatencyStats.percentile(sorted, 90.0), eps)
    }

    @Test
    fun needsTwoFiniteSamples() {
        for (bad in listOf(listOf(1.0), listOf(1.0, Double.NaN), listOf(1.0, -1.0))) {
            try {
                LatencyStats.of(0.0, 0.0, bad, 0)
                fail("accepted $bad")
            } catch (e: IllegalArgumentException) {
                // expected
            }
        }
    }

    @Test
    fun jsonMapHasTheSchemaKeysInOrder() {
        val keys = LatencyStats.of(0.0, 0.0, listOf(1.0, 2.0), 0).toJsonMap().keys.toList()
        assertEquals(listOf("load", "first", "mean", "std", "p50", "p90", "p99", "min", "max", "runs", "warmup"), keys)
    }

    @Test
    fun convertsNanoseconds() {
        assertEquals(1.5, LatencyStats.nanosToMillis(1_500_000L), eps)
    }
}
