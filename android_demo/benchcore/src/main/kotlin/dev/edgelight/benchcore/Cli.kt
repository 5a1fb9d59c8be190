package dev.edgelight.benchcore

import java.io.File
import kotlin.system.exitProcess

/**
 * Command line for the plain-JVM side of the JSON contract (used by tests/test_apps.py):
 *   run-plan PLAN.json OUT.json   runs a plan with the synthetic engine and writes a results file
 *   stats MS MS ...               prints the latency summary of the given samples as JSON
 *   catalog DIR                   prints the models the app would list from DIR (manifest.json, then sidecars)
 */
fun main(args: Array<String>) {
    try {
        when (args.firstOrNull()) {
            "run-plan" -> runPlan(args.drop(1))
            "stats" -> printStats(args.drop(1))
            "catalog" -> printCatalog(args.drop(1))
            else -> usage()
        }
    } catch (e: PlanError) {
        System.err.println("error: ${e.message}")
        exitProcess(2)
    }
}

private fun usage() {
    System.err.println("usage: run-plan PLAN.json OUT.json | stats MS MS ... | catalog DIR")
    exitProcess(2)
}

private fun runPlan(args: List<String>) {
    if (args.size != 2) usage()
    val planFile = File(args[0])
    val plan = BenchPlan.parse(planFile)
    val device = DeviceInfo(
        kind = "host", name = "jvm-synthetic", cpu = System.getProperty("os.arch"),
        os = "${System.getProperty("os.name")} ${System.getProperty("os.version")}"
    )
    // Like the Android app: ExecuTorch and LiteRT are runnable, Core ML is not.
    val engines = listOf(SyntheticEngine("executorch"), SyntheticEngine("tflite"))
    val versions = linkedMapOf("benchcore" to BENCHCORE_VERSION, "java" to (System.getProperty("java.version") ?: "unknown"))
    val records = BenchRunner(engines, device, versions).run(plan, planFile)
    File(args[1]).writeText(ResultsFile.toJson(records), Charsets.UTF_8)
    println("${records.size} records -> ${args[1]}")
}

private fun printStats(args: List<String>) {
    val samples = args.map { it.toDoubleOrNull() ?: throw PlanError("not a number: '$it'") }
    if (samples.size < 2) throw PlanError("stats needs at least 2 samples")
    print(Json.write(LatencyStats.of(0.0, 0.0, samples, 0).toJsonMap()))
}

private fun printCatalog(args: List<String>) {
    if (args.size != 1) usage()
    val dir = File(args[0])
    val manifest = File(dir, ModelCatalog.MANIFEST_NAME)
    val fromManifest = if (manifest.isFile) ModelCatalog.parseManifest(manifest.readText(Charsets.UTF_8)) else emptyList()
    val listed = fromManifest.map { it.file }.toSet()
    val entries = fromManifest + ModelCatalog.scanFolder(dir).filter { it.file !in listed }
    print(Json.write(entries.map {
        linkedMapOf(
            "file" to it.file, "model" to it.model, "runtime" to it.runtime, "precision" to it.precision,
            "input_shape" to it.inputShape, "mean" to it.mean, "std" to it.std, "labels" to it.labels
        )
    }))
}

const val BENCHCORE_VERSION = "0.1.0"
