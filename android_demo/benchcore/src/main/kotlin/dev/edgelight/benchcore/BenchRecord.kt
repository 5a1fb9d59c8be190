package dev.edgelight.benchcore

/** The `device` object of a bench record. Kind is "android" or "ios" on phones, "host" or "arm64-qemu" (emulated) elsewhere. */
data class DeviceInfo(
    val kind: String,
    val name: String,
    val serial: String? = null,
    val cpu: String? = null,
    val soc: String? = null,
    val os: String? = null,
    val coresPinned: String? = null,
    val computeUnits: String? = null
) {
    init {
        require(kind in KINDS) { "device kind must be one of $KINDS, got '$kind'" }
    }

    fun toJsonMap(): Map<String, Any?> = linkedMapOf(
        "kind" to kind, "name" to name, "serial" to serial, "cpu" to cpu, "soc" to soc,
        "os" to os, "cores_pinned" to coresPinned, "compute_units" to computeUnits
    )

    companion object {
        val KINDS = listOf("host", "arm64-qemu", "android", "ios")
    }
}

/** The `artifact` object: what was measured, by path, size and content hash. */
data class ArtifactInfo(val path: String, val bytes: Long, val sha256: String?) {
    fun toJsonMap(): Map<String, Any?> = linkedMapOf("path" to path, "bytes" to bytes, "sha256" to sha256)
}

/**
 * One measurement: (model, runtime, precision, device, threads), as in edgelight/bench/bench_record.schema.json.
 * status is "ok" (latency present), "error" (it failed; [error] says why) or "not_runnable" (this app has
 * no runtime for the artifact). notes: optional remarks (e.g. a CPU mask that was asked for but not applied).
 */
data class BenchRecord(
    val model: String,
    val runtime: String,
    val precision: String,
    val device: DeviceInfo,
    val threads: Int,
    val status: String,
    val artifact: ArtifactInfo,
    val versions: Map<String, String>,
    val timestamp: String,
    val error: String? = null,
    val latency: LatencyStats? = null,
    val params: Long? = null,
    val macs: Long? = null,
    val nanOutputs: Boolean? = null,
    val notes: List<String> = emptyList()
) {
    init {
        require(status in STATUSES) { "status must be one of $STATUSES, got '$status'" }
        require(runtime in RUNTIMES) { "runtime must be one of $RUNTIMES, got '$runtime'" }
        require(precision in BenchPlan.PRECISIONS) { "precision must be one of ${BenchPlan.PRECISIONS}" }
        require(status != "ok" || latency != null) { "an ok record needs latency" }
        require(status == "ok" || error != null) { "a failed record needs an error message" }
    }

    fun toJsonMap(): Map<String, Any?> {
        val map = linkedMapOf<String, Any?>(
            "schema_version" to SCHEMA_VERSION,
            "model" to model,
            "runtime" to runtime,
            "precision" to precision,
            "device" to device.toJsonMap(),
            "threads" to threads,
            "status" to status,
            "error" to error,
            "artifact" to artifact.toJsonMap(),
            "latency_ms" to latency?.toJsonMap(),
            "params" to params,
            "macs" to macs
        )
        // nan_outputs is a boolean when known; the schema has no null for it, so leave it out otherwise.
        if (nanOutputs != null) map["nan_outputs"] = nanOutputs
        if (notes.isNotEmpty()) map["notes"] = notes
        map["versions"] = versions
        map["timestamp"] = timestamp
        return map
    }

    companion object {
        const val SCHEMA_VERSION = 2
        val STATUSES = listOf("ok", "error", "not_runnable")
        val RUNTIMES = listOf("eager", "executorch", "tflite", "coreml", "onnx")
    }
}

/** A results file: {"schema_version": 2, "records": [...]}. */
object ResultsFile {
    fun toJson(records: List<BenchRecord>): String =
        Json.write(linkedMapOf("schema_version" to BenchRecord.SCHEMA_VERSION, "records" to records.map { it.toJsonMap() }))
}
