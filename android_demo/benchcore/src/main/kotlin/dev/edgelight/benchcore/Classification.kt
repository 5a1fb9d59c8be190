package dev.edgelight.benchcore

import kotlin.math.exp

/** One of the top-k classes shown under the camera preview. */
data class Prediction(val index: Int, val label: String, val probability: Float)

/** Camera pixels in, top-k classes out: the plain math between the camera and the runtimes. */
object Classification {

    /**
     * Packed ARGB pixels (Android's Bitmap.getPixels order: row-major, 0xAARRGGBB) of a width x height image
     * -> a flat NCHW float array, scaled to [0, 1] then normalised with the sidecar's per-channel mean and std,
     * the same preprocessing the model was trained and exported with. One channel (e.g. digits) takes the
     * luma (ITU-R BT.601 weights); three channels are R, G, B.
     */
    fun argbToNchw(pixels: IntArray, width: Int, height: Int, mean: List<Float>, std: List<Float>): FloatArray {
        require(pixels.size == width * height) { "expected ${width * height} pixels, got ${pixels.size}" }
        require(mean.size == std.size && (mean.size == 1 || mean.size == 3)) { "mean and std need 1 or 3 channels" }
        require(std.all { it > 0f }) { "std must be > 0" }
        val plane = width * height
        val out = FloatArray(mean.size * plane)
        for (i in 0 until plane) {
            val p = pixels[i]
            val r = ((p shr 16) and 0xFF) / 255f
            val g = ((p shr 8) and 0xFF) / 255f
            val b = (p and 0xFF) / 255f
            if (mean.size == 1) {
                out[i] = (0.299f * r + 0.587f * g + 0.114f * b - mean[0]) / std[0]
            } else {
                out[i] = (r - mean[0]) / std[0]
                out[plane + i] = (g - mean[1]) / std[1]
                out[2 * plane + i] = (b - mean[2]) / std[2]
            }
        }
        return out
    }

    /** Numerically stable softmax (subtracts the max first). */
    fun softmax(logits: FloatArray): FloatArray {
        if (logits.isEmpty()) return logits
        var max = logits[0]
        for (v in logits) if (v > max) max = v
        val exps = FloatArray(logits.size) { exp((logits[it] - max).toDouble()).toFloat() }
        val sum = exps.sum()
        return FloatArray(exps.size) { exps[it] / sum }
    }

    /** The k most probable classes, highest first; ties keep the lower class index first. */
    fun topK(logits: FloatArray, labels: List<String>, k: Int = 5): List<Prediction> {
        val probabilities = softmax(logits)
        return probabilities.indices
            .sortedWith(compareByDescending<Int> { probabilities[it] }.thenBy { it })
            .take(k)
            .map { Prediction(it, labels.getOrElse(it) { i -> "class $i" }, probabilities[it]) }
    }
}
