package dev.edgelight.demo

import android.graphics.Bitmap
import android.graphics.Matrix
import dev.edgelight.benchcore.Classification
import dev.edgelight.benchcore.InferenceEngine
import dev.edgelight.benchcore.LatencyStats
import dev.edgelight.benchcore.LoadedModel
import dev.edgelight.benchcore.ModelEntry
import dev.edgelight.benchcore.PlanArtifact
import dev.edgelight.benchcore.Prediction
import java.io.File

/** What one camera frame produced: top-5 classes and where the time went. */
data class FrameResult(val top5: List<Prediction>, val preprocessMs: Double, val inferenceMs: Double, val rollingP50Ms: Double?)

/**
 * One loaded model plus the per-frame pipeline: rotate, centre-crop, resize to the model's input, normalise with
 * the sidecar's mean/std (benchcore), run, softmax + top-5. Used from a single background thread only.
 */
class FrameClassifier(val entry: ModelEntry, engine: InferenceEngine, file: File, threads: Int) : java.io.Closeable {
    private val model: LoadedModel = engine.load(
        file, PlanArtifact(entry.file, entry.model, entry.runtime, entry.precision, entry.inputShape), threads
    )
    private val recent = ArrayDeque<Double>()

    fun classify(frame: Bitmap, rotationDegrees: Int): FrameResult {
        val start = System.nanoTime()
        val input = toInput(frame, rotationDegrees)
        val afterPreprocess = System.nanoTime()
        val logits = model.run(input)
        val end = System.nanoTime()
        val inferenceMs = LatencyStats.nanosToMillis(end - afterPreprocess)
        recent.addLast(inferenceMs)
        if (recent.size > ROLLING_WINDOW) recent.removeFirst()
        val p50 = if (recent.size >= 2) LatencyStats.percentile(recent.sorted(), 50.0) else null
        return FrameResult(
            Classification.topK(logits, entry.labels, 5),
            LatencyStats.nanosToMillis(afterPreprocess - start), inferenceMs, p50
        )
    }

    private fun toInput(frame: Bitmap, rotationDegrees: Int): FloatArray {
        val side = minOf(frame.width, frame.height)
        val matrix = Matrix().apply {
            postRotate(rotationDegrees.toFloat())
            val scale = entry.width.toFloat() / side
            postScale(scale, entry.height.toFloat() / side)
        }
        // Centre square, rotated upright and scaled to H x W in one filtered pass.
        var square = Bitmap.createBitmap(frame, (frame.width - side) / 2, (frame.height - side) / 2, side, side, matrix, true)
        // The matrix path can round one pixel off; the model needs exactly H x W.
        if (square.width != entry.width || square.height != entry.height) {
            square = Bitmap.createScaledBitmap(square, entry.width, entry.height, true)
        }
        val pixels = IntArray(entry.width * entry.height)
        square.getPixels(pixels, 0, entry.width, 0, 0, entry.width, entry.height)
        return Classification.argbToNchw(pixels, entry.width, entry.height, entry.mean, entry.std)
    }

    override fun close() = model.close()

    companion object {
        const val ROLLING_WINDOW = 30
    }
}
