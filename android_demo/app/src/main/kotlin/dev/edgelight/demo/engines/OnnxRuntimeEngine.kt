package dev.edgelight.demo.engines

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtSession
import dev.edgelight.benchcore.InferenceEngine
import dev.edgelight.benchcore.LoadedModel
import dev.edgelight.benchcore.PlanArtifact
import dev.edgelight.demo.BuildConfig
import java.io.File
import java.nio.FloatBuffer

/**
 * Runs .onnx models with onnxruntime-android on its CPU execution provider, the provider edgelight
 * verifies every .onnx with on the host. Input: the sidecar's NCHW float32 shape; output: the logits.
 */
class OnnxRuntimeEngine : InferenceEngine {
    override val runtime = "onnx"

    override fun versions(): Map<String, String> = linkedMapOf("onnxruntime" to BuildConfig.ONNXRUNTIME_VERSION)

    override fun load(file: File, artifact: PlanArtifact, threads: Int): LoadedModel {
        val env = OrtEnvironment.getEnvironment()
        val options = OrtSession.SessionOptions()
        if (threads > 0) options.setIntraOpNumThreads(threads)
        val session = env.createSession(file.absolutePath, options)
        val inputName = session.inputNames.first()
        val shape = artifact.inputShape.map { it.toLong() }.toLongArray()
        return object : LoadedModel {
            override fun run(input: FloatArray): FloatArray {
                OnnxTensor.createTensor(env, FloatBuffer.wrap(input), shape).use { tensor ->
                    session.run(mapOf(inputName to tensor)).use { result ->
                        @Suppress("UNCHECKED_CAST")
                        val logits = result[0].value as Array<FloatArray>
                        return logits.flatMap { it.asIterable() }.toFloatArray()
                    }
                }
            }

            override fun close() {
                session.close()
                options.close()
            }
        }
    }
}
