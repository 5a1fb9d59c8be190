package dev.edgelight.benchcore

import java.io.File
import java.io.FileInputStream
import java.security.MessageDigest
import java.time.Instant

/** A runtime the app links (ExecuTorch, LiteRT, Core ML...). The app implements it; tests use fakes. */
interface InferenceEngine {
    /** The plan's runtime name this engine serves: "executorch", "tflite" or "coreml". */
    val runtime: String

    /** Library versions written into each record's `versions`, e.g. {"executorch-android": "1.5.1"}. */
    fun versions(): Map<String, String>

    /** Loads [file]; [threads] = 0 means the runtime's own default. */
    fun load(file: File, artifact: PlanArtifact, threads: Int): LoadedModel
}

/** A loaded model that maps one flat NCHW float input to one flat float output. */
interface LoadedModel : java.io.Closeable {
    fun run(input: FloatArray): FloatArray
}

/** Monotonic nanosecond clock; injectable so tests can make timings exact. */
interface NanoClock {
    fun nanoTime(): Long

    companion object {
        val SYSTEM: NanoClock = object : NanoClock {
            override fun nanoTime(): Long = System.nanoTime()
        }
    }
}

/**
 * Runs a [BenchPlan]: for each artifact, load (timed), one first inference (timed), `warmup` untimed runs,
 * then `runs` timed runs, and one [BenchRecord]. A failure in one artifact becomes an "error" record and the
 * plan goes on; an artifact whose runtime this app lacks becomes "not_runnable".
 */
class BenchRunner(
    engines: List<InferenceEngine>,
    private val device: DeviceInfo,
    private val appVersions: Map<String, String> = emptyMap(),
    private val clock: NanoClock = NanoClock.SYSTEM,
    private val timestamp: () -> String = { Instant.now().toString() },
    private val progress: (String) -> Unit = {},
    private val notes: List<String> = emptyList()
) {
    private val engines: Map<String, InferenceEngine> = engines.associateBy { it.runtime }

    /**
     * Measures every artifact in order. [onRecords] gets the records so far after each artifact, so the app can
     * rewrite its results file as it goes and a run cut short still leaves the finished records.
     */
    fun run(plan: BenchPlan, planFile: File, onRecords: (List<BenchRecord>) -> Unit = {}): List<BenchRecord> {
        val records = ArrayList<BenchRecord>()
        for (artifact in plan.artifacts) {
            records.add(measure(plan, artifact, plan.artifactFile(planFile, artifact)))
            onRecords(records.toList())
        }
        return records
    }

    fun measure(plan: BenchPlan, artifact: PlanArtifact, file: File): BenchRecord {
        progress("${artifact.model} ${artifact.runtime} ${artifact.precision}: ${file.name}")
        val info = ArtifactInfo(file.path, if (file.isFile) file.length() else 0L, null)
        val engine = engines[artifact.runtime]
        if (engine == null) {
            return record(artifact, plan, info, "not_runnable", "this app has no ${artifact.runtime} runtime", appVersions)
        }
        val versions = LinkedHashMap(appVersions)
        versions.putAll(engine.versions())
        if (!file.isFile) {
            return record(artifact, plan, info, "error", "artifact not found: ${file.path}", versions)
        }
        val hashed = ArtifactInfo(file.path, file.length(), sha256(file))
        return try {
            val input = syntheticInput(artifact.inputElements)
            var nan = false
            val loadStart = clock.nanoTime()
            val model = engine.load(file, artifact, plan.threads)
            val loadMs = LatencyStats.nanosToMillis(clock.nanoTime() - loadStart)
            model.use {
                val firstStart = clock.nanoTime()
                nan = nan or hasNaN(model.run(input))
                val firstMs = LatencyStats.nanosToMillis(clock.nanoTime() - firstStart)
                for (i in 0 until plan.warmup) nan = nan or hasNaN(model.run(input))
                val samples = ArrayList<Double>(plan.runs)
                for (i in 0 until plan.runs) {
                    val start = clock.nanoTime()
                    val output = model.run(input)
                    samples.add(LatencyStats.nanosToMillis(clock.nanoTime() - start))
                    nan = nan or hasNaN(output)
                }
                val stats = LatencyStats.of(loadMs, firstMs, samples, plan.warmup)
                BenchRecord(
                    model = artifact.model, runtime = artifact.runtime, precision = artifact.precision,
                    device = device, threads = plan.threads, status = "ok", artifact = hashed,
                    versions = versions, timestamp = timestamp(), latency = stats,
                    params = artifact.params, macs = artifact.macs, nanOutputs = nan,
                    notes = if (nan) notes + "NaN in the outputs" else notes
                )
            }
        } catch (e: Exception) {
            record(artifact, plan, hashed, "error", "${e.javaClass.simpleName}: ${e.message}", versions)
        }
    }

    private fun record(
        artifact: PlanArtifact,
        plan: BenchPlan,
        info: ArtifactInfo,
        status: String,
        error: String,
        versions: Map<String, String>
    ) = BenchRecord(
        model = artifact.model, runtime = artifact.runtime, precision = artifact.precision,
        device = device, threads = plan.threads, status = status, artifact = info,
        versions = versions, timestamp = timestamp(), error = error,
        params = artifact.params, macs = artifact.macs, notes = notes
    )

    companion object {
        /** Deterministic inputs in [-1, 1): every run and every device feeds the same numbers. */
        fun syntheticInput(size: Int, seed: Long = 20261122L): FloatArray {
            var state = seed
            return FloatArray(size) {
                state = state * 6364136223846793005L + 1442695040888963407L
                ((state ushr 40).toFloat() / (1L shl 24).toFloat()) * 2f - 1f
            }
        }

        fun hasNaN(values: FloatArray): Boolean = values.any { it.isNaN() }

        fun sha256(file: File): String {
            val digest = MessageDigest.getInstance("SHA-256")
            FileInputStream(file).use { stream ->
                val buffer = ByteArray(1 shl 16)
                while (true) {
                    val n = stream.read(buffer)
                    if (n < 0) break
                    digest.update(buffer, 0, n)
                }
            }
            return digest.digest().joinToString("") { String.format("%02x", it) }
        }
    }
}
