package dev.edgelight.benchcore

import java.io.File

/** A plan or manifest that does not follow its schema; the message names the field. */
class PlanError(message: String) : IllegalArgumentException(message)

/** One artifact to measure; mirrors `artifacts[]` in edgelight/bench/bench_plan.schema.json. */
data class PlanArtifact(
    val file: String,
    val model: String,
    val runtime: String,
    val precision: String,
    val inputShape: List<Int>,
    val params: Long? = null,
    val macs: Long? = null
) {
    val inputElements: Int
        get() = inputShape.fold(1) { acc, d -> acc * d }
}

/** What the phone runs in benchmark mode (bench_plan.schema.json, schema_version 2). */
data class BenchPlan(
    val runs: Int,
    val warmup: Int,
    val threads: Int,
    val artifacts: List<PlanArtifact>,
    val resultsFileName: String = DEFAULT_RESULTS_FILE
) {
    /** Artifact files are named relative to the folder the plan file sits in. */
    fun artifactFile(planFile: File, artifact: PlanArtifact): File {
        val candidate = File(artifact.file)
        return if (candidate.isAbsolute) candidate else File(planFile.absoluteFile.parentFile, artifact.file)
    }

    companion object {
        const val SCHEMA_VERSION = 2L
        const val DEFAULT_RESULTS_FILE = "bench_results.json"
        val PLAN_RUNTIMES = listOf("executorch", "tflite", "coreml", "onnx")
        val PRECISIONS = listOf("fp32", "fp16", "w8a8", "w8")
        // device, inputs, labels, dataset, logits, etdump: read by edgelight-bench (the native runner); the app accepts and ignores them
        private val PLAN_KEYS = setOf("schema_version", "runs", "warmup", "threads", "results", "artifacts", "device")
        private val ARTIFACT_KEYS = setOf("file", "model", "runtime", "precision", "input_shape", "params", "macs", "inputs", "labels", "dataset", "logits", "etdump")

        fun parse(text: String): BenchPlan {
            val root = try {
                Json.parse(text)
            } catch (e: Json.ParseError) {
                throw PlanError("plan: ${e.message}")
            }
            val obj = root as? Map<*, *> ?: throw PlanError("plan: must be a JSON object")
            checkKeys(obj, PLAN_KEYS, "plan")
            if (obj["schema_version"] != SCHEMA_VERSION) throw PlanError("plan.schema_version: must be $SCHEMA_VERSION, got ${obj["schema_version"]}")
            val runs = intField(obj, "runs", "plan", minimum = 2)
            val warmup = intField(obj, "warmup", "plan", minimum = 0)
            val threads = intField(obj, "threads", "plan", minimum = 0)
            val results = obj["results"]
            val resultsName = when (results) {
                null -> DEFAULT_RESULTS_FILE
                is String -> results
                else -> throw PlanError("plan.results: must be a string")
            }
            // The results file lands in the app's own files folder: a bare name, never a path.
            if (resultsName.length == 0 || resultsName.contains('/') || resultsName.contains('\\') || resultsName.startsWith(".")) {
                throw PlanError("plan.results: must be a plain file name, got '$resultsName'")
            }
            val list = obj["artifacts"] as? List<*> ?: throw PlanError("plan.artifacts: required, must be an array")
            if (list.isEmpty()) throw PlanError("plan.artifacts: must name at least one artifact")
            val artifacts = list.mapIndexed { i, item -> parseArtifact(item, "plan.artifacts[$i]") }
            return BenchPlan(runs, warmup, threads, artifacts, resultsName)
        }

        fun parse(file: File): BenchPlan = parse(file.readText(Charsets.UTF_8))

        private fun parseArtifact(item: Any?, where: String): PlanArtifact {
            val obj = item as? Map<*, *> ?: throw PlanError("$where: must be an object")
            checkKeys(obj, ARTIFACT_KEYS, where)
            val runtime = stringField(obj, "runtime", where)
            if (runtime !in PLAN_RUNTIMES) throw PlanError("$where.runtime: must be one of $PLAN_RUNTIMES, got '$runtime'")
            val precision = stringField(obj, "precision", where)
            if (precision !in PRECISIONS) throw PlanError("$where.precision: must be one of $PRECISIONS, got '$precision'")
            return PlanArtifact(
                file = stringField(obj, "file", where),
                model = stringField(obj, "model", where),
                runtime = runtime,
                precision = precision,
                inputShape = inputShape(obj["input_shape"], "$where.input_shape"),
                params = optionalLong(obj, "params", where),
                macs = optionalLong(obj, "macs", where)
            )
        }

        internal fun inputShape(value: Any?, where: String): List<Int> {
            val list = value as? List<*> ?: throw PlanError("$where: required, must be an array of 4 integers [N, C, H, W]")
            if (list.size != 4) throw PlanError("$where: must have 4 dimensions [N, C, H, W], got ${list.size}")
            return list.map {
                val d = it as? Long ?: throw PlanError("$where: dimensions must be integers")
                if (d < 1 || d > Int.MAX_VALUE) throw PlanError("$where: dimensions must be >= 1")
                d.toInt()
            }
        }

        internal fun checkKeys(obj: Map<*, *>, allowed: Set<String>, where: String) {
            val unknown = obj.keys.filter { it !in allowed }
            if (unknown.isNotEmpty()) throw PlanError("$where: unknown field(s) ${unknown.joinToString()}")
        }

        internal fun stringField(obj: Map<*, *>, key: String, where: String): String {
            val value = obj[key] as? String ?: throw PlanError("$where.$key: required, must be a string")
            if (value.length == 0) throw PlanError("$where.$key: must not be empty")
            return value
        }

        private fun intField(obj: Map<*, *>, key: String, where: String, minimum: Int): Int {
            val value = obj[key] as? Long ?: throw PlanError("$where.$key: required, must be an integer")
            if (value < minimum || value > Int.MAX_VALUE) throw PlanError("$where.$key: must be >= $minimum, got $value")
            return value.toInt()
        }

        private fun optionalLong(obj: Map<*, *>, key: String, where: String): Long? {
            val value = obj[key] ?: return null
            return value as? Long ?: throw PlanError("$where.$key: must be an integer or null")
        }
    }
}
