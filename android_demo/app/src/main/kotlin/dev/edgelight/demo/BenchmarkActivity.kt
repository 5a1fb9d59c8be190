package dev.edgelight.demo

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.util.Log
import android.widget.ScrollView
import android.widget.TextView
import dev.edgelight.benchcore.BENCHCORE_VERSION
import dev.edgelight.benchcore.BenchPlan
import dev.edgelight.benchcore.BenchRecord
import dev.edgelight.benchcore.BenchRunner
import dev.edgelight.benchcore.DeviceInfo
import dev.edgelight.benchcore.PlanError
import dev.edgelight.benchcore.ResultsFile
import dev.edgelight.demo.engines.allEngines
import java.io.File

/**
 * Benchmark mode, started over adb (see README.md "Benchmark mode"); edgelight/bench/transport.py runs:
 *
 *   adb shell am start -W -S -n dev.edgelight.demo/.BenchmarkActivity \
 *       --es bench_plan /data/local/tmp/edgelight-bench/bench_plan.json --es cpu_mask f0
 *
 * Extras: `bench_plan` (required; `plan` is accepted too) path of a bench plan; `cpu_mask` (optional) the
 * big-core mask the host wanted — the app cannot pin threads from Kotlin, so it is recorded in `notes`, not
 * applied; `serial` (optional) copied into device.serial.
 * It runs the plan on a background thread and rewrites {"schema_version": 2, "records": [...]} in
 * files/<plan.results> (default bench_results.json) atomically after every artifact, so the host can read
 * records as they finish. A plan that cannot be read leaves files/bench_error.txt instead. Logcat (tag
 * edgelight) ends with EDGELIGHT_BENCH_DONE <path> or EDGELIGHT_BENCH_FAILED <reason>.
 */
class BenchmarkActivity : Activity() {
    private lateinit var log: TextView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        log = TextView(this).apply { setPadding(24, 24, 24, 24); textSize = 13f }
        setContentView(ScrollView(this).apply { addView(log) })

        val planPath = intent.getStringExtra(EXTRA_PLAN) ?: intent.getStringExtra(EXTRA_PLAN_SHORT)
        if (planPath == null) {
            fail("missing extra: --es $EXTRA_PLAN /data/local/tmp/edgelight-bench/bench_plan.json")
            return
        }
        val serial = intent.getStringExtra(EXTRA_SERIAL)
        val cpuMask = intent.getStringExtra(EXTRA_CPU_MASK)?.takeIf { it.isNotBlank() }
        // A stale results file must never be mistaken for this run's answer.
        File(filesDir, ERROR_FILE).delete()
        File(filesDir, BenchPlan.DEFAULT_RESULTS_FILE).delete()
        Thread({ runPlan(File(planPath), serial, cpuMask) }, "edgelight-bench").start()
    }

    private fun runPlan(planFile: File, serial: String?, cpuMask: String?) {
        val plan = try {
            BenchPlan.parse(planFile)
        } catch (e: PlanError) {
            fail(e.message ?: "invalid plan")
            return
        } catch (e: java.io.IOException) {
            fail("cannot read ${planFile.path}: ${e.message}")
            return
        }
        val results = File(filesDir, plan.resultsFileName)
        results.delete()
        show("plan: ${plan.artifacts.size} artifacts, ${plan.runs} runs, ${plan.warmup} warm-up, ${plan.threads} threads")

        val runner = BenchRunner(
            engines = allEngines(),
            device = deviceInfo(serial),
            appVersions = linkedMapOf("app" to BuildConfig.VERSION_NAME, "benchcore" to BENCHCORE_VERSION, "android" to Build.VERSION.RELEASE),
            progress = { show(it) },
            notes = listOfNotNull(cpuMask?.let { "cpu_mask $it requested; the app does not pin threads (no affinity API in Kotlin)" })
        )
        val records = runner.run(plan, planFile) { soFar -> writeResults(plan, soFar) }
        records.forEach { r -> show("${r.model} ${r.runtime} ${r.precision}: ${r.status} ${r.latency?.let { "p50 %.3f ms".format(it.p50) } ?: r.error}") }
        // Readable with a plain `adb pull` on builds where run-as is not available.
        getExternalFilesDir(null)?.let { File(it, plan.resultsFileName).writeText(ResultsFile.toJson(records)) }
        Log.i(TAG, "EDGELIGHT_BENCH_DONE ${results.path}")
        show("done: ${results.path}")
    }

    /** Write to a temporary name and rename, so a reader never sees half a file. */
    private fun writeResults(plan: BenchPlan, records: List<BenchRecord>) {
        val results = File(filesDir, plan.resultsFileName)
        val tmp = File(filesDir, plan.resultsFileName + ".tmp")
        tmp.writeText(ResultsFile.toJson(records))
        check(tmp.renameTo(results)) { "could not move ${tmp.path} to ${results.path}" }
    }

    private fun deviceInfo(serial: String?): DeviceInfo {
        val soc = if (Build.VERSION.SDK_INT >= 31) "${Build.SOC_MANUFACTURER} ${Build.SOC_MODEL}" else Build.HARDWARE
        return DeviceInfo(
            kind = "android",
            name = "${Build.MANUFACTURER} ${Build.MODEL}",
            serial = serial,
            cpu = Build.SUPPORTED_ABIS.firstOrNull(),
            soc = soc,
            os = "Android ${Build.VERSION.RELEASE} (API ${Build.VERSION.SDK_INT})"
        )
    }

    private fun fail(reason: String) {
        File(filesDir, ERROR_FILE).writeText(reason + "\n")
        Log.e(TAG, "EDGELIGHT_BENCH_FAILED $reason")
        show("error: $reason")
    }

    private fun show(line: String) {
        Log.i(TAG, line)
        runOnUiThread { log.append(line + "\n") }
    }

    companion object {
        const val EXTRA_PLAN = "bench_plan"
        const val EXTRA_PLAN_SHORT = "plan"
        const val EXTRA_CPU_MASK = "cpu_mask"
        const val EXTRA_SERIAL = "serial"
        const val ERROR_FILE = "bench_error.txt"
        private const val TAG = "edgelight"
    }
}
