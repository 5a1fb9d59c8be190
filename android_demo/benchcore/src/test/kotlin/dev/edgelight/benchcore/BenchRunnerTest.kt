package dev.edgelight.benchcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import java.io.File

class BenchRunnerTest {
    @get:Rule
    val tmp = TemporaryFolder()

    /** Every call advances 2 ms, so each timed span is exactly 2 ms. */
    private class SteppingClock : NanoClock {
        var now = 0L
        override fun nanoTime(): Long {
            now += 2_000_000L
            return now
        }
    }

    private class FakeEngine(override val runtime: String, val output: FloatArray, val failOnLoad: Boolean = false) : InferenceEngine {
        var calls = 0
        var threadsSeen = -1
        var closed = false
        override fun versions() = mapOf("$runtime-fake" to "9.9")
        override fun load(file: File, artifact: PlanArtifact, threads: Int): LoadedModel {
            if (failOnLoad) throw IllegalStateException("corrupt program")
            threadsSeen = threads
            return object : LoadedModel {
                override fun run(input: FloatArray): FloatArray {
                    assertEquals(artifact.inputElements, input.size)
                    calls++
                    return output
                }
                override fun close() {
                    closed = true
                }
            }
        }
    }

    private val device = DeviceInfo(kind = "android", name = "Pixel Test", os = "Android 15")

    private fun plan(vararg artifacts: PlanArtifact) = BenchPlan(runs = 5, warmup = 3, threads = 2, artifacts = artifacts.toList())

    private fun artifact(file: String, runtime: String) = PlanArtifact(file, "lrunet", runtime, "fp32", listOf(1, 3, 8, 8), 1234L, null)

    @Test
    fun measuresLoadFirstWarmupAndRuns() {
        val planFile = tmp.newFile("plan.json")
        tmp.newFile("m.pte").writeBytes(byteArrayOf(1, 2, 3))
        val engine = FakeEngine("executorch", floatArrayOf(0.1f, 0.9f))
        val runner = BenchRunner(listOf(engine), device, mapOf("app" to "1.0"), SteppingClock(), { "2026-11-22T08:00:00Z" })
        val record = runner.run(plan(artifact("m.pte", "executorch")), planFile).single()

        assertEquals("ok", record.status)
        assertEquals(1 + 3 + 5, engine.calls)
        assertEquals(2, engine.threadsSeen)
        assertTrue(engine.closed)
        val latency = record.latency!!
        assertEquals(2.0, latency.load, 1e-9)
        assertEquals(2.0, latency.first, 1e-9)
        assertEquals(2.0, latency.p99, 1e-9)
        assertEquals(0.0, latency.std, 1e-9)
        assertEquals(5, latency.runs)
        assertEquals(3, latency.warmup)
        assertEquals(false, record.nanOutputs)
        assertEquals(3L, record.artifact.bytes)
        // sha256 of bytes 01 02 03
        assertEquals("039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81", record.artifact.sha256)
        assertEquals(mapOf("app" to "1.0", "executorch-fake" to "9.9"), record.versions)
        assertEquals(1234L, record.params)
    }

    @Test
    fun flagsNaNOutputs() {
        val planFile = tmp.newFile("plan.json")
        tmp.newFile("m.tflite").writeBytes(byteArrayOf(9))
        val runner = BenchRunner(listOf(FakeEngine("tflite", floatArrayOf(Float.NaN))), device)
        val record = runner.run(plan(artifact("m.tflite", "tflite")), planFile).single()
        assertEquals("ok", record.status)
        assertEquals(true, record.nanOutputs)
        assertEquals(listOf("NaN in the outputs"), record.notes)
    }

    @Test
    fun oneBadArtifactDoesNotStopThePlan() {
        val planFile = tmp.newFile("plan.json")
        tmp.newFile("broken.pte").writeBytes(byteArrayOf(0))
        tmp.newFile("good.tflite").writeBytes(byteArrayOf(0))
        val runner = BenchRunner(
            listOf(FakeEngine("executorch", floatArrayOf(1f), failOnLoad = true), FakeEngine("tflite", floatArrayOf(1f))),
            device
        )
        val seen = ArrayList<Int>()
        val records = runner.run(
            plan(artifact("missing.pte", "executorch"), artifact("broken.pte", "executorch"),
                artifact("m.mlpackage", "coreml"), artifact("good.tflite", "tflite")),
            planFile
        ) { soFar -> seen.add(soFar.size) }
        assertEquals(listOf("error", "error", "not_runnable", "ok"), records.map { it.status })
        assertEquals("the results are handed over after every artifact", listOf(1, 2, 3, 4), seen)
        assertTrue(records[0].error!!.startsWith("artifact not found"))
        assertEquals("IllegalStateException: corrupt program", records[1].error)
        assertNull(records[1].latency)
        assertEquals("this app has no coreml runtime", records[2].error)
        assertNull(records[2].artifact.sha256)
    }

    @Test
    fun recordJsonFollowsTheSchemaShape() {
        val planFile = tmp.newFile("plan.json")
        tmp.newFile("m.pte").writeBytes(byteArrayOf(1))
        val runner = BenchRunner(
            listOf(FakeEngine("executorch", floatArrayOf(1f))), device, timestamp = { "2026-11-22T08:00:00Z" },
            notes = listOf("cpu_mask f0 requested; the app does not pin threads")
        )
        val records = runner.run(plan(artifact("m.pte", "executorch"), artifact("nope.pte", "executorch")), planFile)
        val parsed = Json.parse(ResultsFile.toJson(records)) as Map<*, *>
        assertEquals(2L, parsed["schema_version"])
        val list = parsed["records"] as List<*>
        val ok = list[0] as Map<*, *>
        for (key in listOf("schema_version", "model", "runtime", "precision", "device", "threads", "status", "artifact", "versions", "timestamp")) {
            assertTrue("missing $key", ok.containsKey(key))
        }
        assertEquals("android", (ok["device"] as Map<*, *>)["kind"])
        val failed = list[1] as Map<*, *>
        assertNull(failed["latency_ms"])
        assertFalse("nan_outputs is left out when unknown", failed.containsKey("nan_outputs"))
        assertEquals(listOf("cpu_mask f0 requested; the app does not pin threads"), ok["notes"])
    }

    @Test
    fun syntheticInputIsDeterministicAndBounded() {
        val a = BenchRunner.syntheticInput(1000)
        val b = BenchRunner.syntheticInput(1000)
        assertTrue(a.contentEquals(b))
        assertTrue(a.all { it >= -1f && it < 1f })
        assertTrue("values vary", a.toSet().size > 900)
    }
}
