package dev.edgelight.benchcore

import java.io.File

/**
 * A model the app can pick: the artifact file plus the preprocessing and labels from its sidecar
 * (`model.pte` -> `model.pte.json`) or from the bundle manifest that `edgelight bundle` writes.
 */
data class ModelEntry(
    val file: String,
    val model: String,
    val runtime: String,
    val precision: String,
    val inputShape: List<Int>,
    val mean: List<Float>,
    val std: List<Float>,
    val labels: List<String>
) {
    val height: Int get() = inputShape[2]
    val width: Int get() = inputShape[3]
    val displayName: String get() = "$model · $runtime · $precision"
}

object ModelCatalog {
    const val MANIFEST_NAME = "manifest.json"

    /** The runtime an artifact needs, from its suffix; null for files the apps do not run. */
    fun runtimeFor(fileName: String): String? = when {
        fileName.endsWith(".pte") -> "executorch"
        fileName.endsWith(".tflite") -> "tflite"
        fileName.endsWith(".onnx") -> "onnx"
        fileName.endsWith(".mlpackage") || fileName.endsWith(".mlmodelc") -> "coreml"
        else -> null
    }

    /**
     * Parses the bundle manifest: {"schema_version": 1, "app": "android", "models": [{"file", "model", "runtime",
     * "precision", "input_shape", "mean", "std", "labels"}]}, where labels is a list of class names.
     */
    fun parseManifest(text: String): List<ModelEntry> {
        val root = Json.parse(text) as? Map<*, *> ?: throw PlanError("manifest: must be a JSON object")
        if (root["schema_version"] != 1L) throw PlanError("manifest.schema_version: must be 1")
        val models = root["models"] as? List<*> ?: throw PlanError("manifest.models: required, must be an array")
        return models.mapIndexed { i, item ->
            val obj = item as? Map<*, *> ?: throw PlanError("manifest.models[$i]: must be an object")
            val file = BenchPlan.stringField(obj, "file", "manifest.models[$i]")
            entry(file, obj, "manifest.models[$i]", BenchPlan.stringField(obj, "runtime", "manifest.models[$i]"))
        }
    }

    /** Parses the sidecar next to a pushed artifact; the runtime comes from the artifact's suffix. */
    fun parseSidecar(artifactName: String, text: String): ModelEntry {
        val where = "$artifactName.json"
        val runtime = runtimeFor(artifactName) ?: throw PlanError("$artifactName: not a .pte, .tflite or .mlpackage file")
        val obj = Json.parse(text) as? Map<*, *> ?: throw PlanError("$where: must be a JSON object")
        return entry(artifactName, obj, where, runtime)
    }

    /** Artifacts in [dir] that have a sidecar; files without one are skipped (the picker cannot label them). */
    fun scanFolder(dir: File): List<ModelEntry> {
        val files = dir.listFiles() ?: return emptyList()
        return files.filter { runtimeFor(it.name) != null && File(dir, it.name + ".json").isFile }
            .sortedBy { it.name }
            .map { parseSidecar(it.name, File(dir, it.name + ".json").readText(Charsets.UTF_8)) }
    }

    private fun entry(file: String, obj: Map<*, *>, where: String, runtime: String): ModelEntry {
        if (runtime !in BenchPlan.PLAN_RUNTIMES) throw PlanError("$where.runtime: must be one of ${BenchPlan.PLAN_RUNTIMES}")
        val precision = BenchPlan.stringField(obj, "precision", where)
        if (precision !in BenchPlan.PRECISIONS) throw PlanError("$where.precision: must be one of ${BenchPlan.PRECISIONS}")
        val labels = obj["labels"] as? List<*> ?: throw PlanError("$where.labels: required, must be a list of class names")
        val inputShape = BenchPlan.inputShape(obj["input_shape"], "$where.input_shape")
        val channels = inputShape[1]
        if (channels != 1 && channels != 3) throw PlanError("$where.input_shape: the apps feed 1 or 3 channels, got $channels")
        return ModelEntry(
            file = file,
            model = BenchPlan.stringField(obj, "model", where),
            runtime = runtime,
            precision = precision,
            inputShape = inputShape,
            mean = floats(obj["mean"], "$where.mean", channels),
            std = floats(obj["std"], "$where.std", channels),
            labels = labels.map { it as? String ?: throw PlanError("$where.labels: class names must be strings") }
        )
    }

    private fun floats(value: Any?, where: String, channels: Int): List<Float> {
        val list = value as? List<*> ?: throw PlanError("$where: required, must be a list of $channels numbers")
        if (list.size != channels) throw PlanError("$where: must have one value per input channel ($channels), got ${list.size}")
        return list.map { (it as? Number ?: throw PlanError("$where: values must be numbers")).toFloat() }
    }
}
