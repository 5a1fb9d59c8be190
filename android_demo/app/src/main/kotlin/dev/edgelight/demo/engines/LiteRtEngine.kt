package dev.edgelight.demo.engines

import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel
import dev.edgelight.benchcore.InferenceEngine
import dev.edgelight.benchcore.LoadedModel
import dev.edgelight.benchcore.PlanArtifact
import dev.edgelight.demo.BuildConfig
import java.io.File

/**
 * Runs .tflite models with LiteRT's CompiledModel API on the CPU (XNNPACK).
 * litert-torch keeps the PyTorch NCHW input layout, so the same flat NCHW floats feed both runtimes.
 */
class LiteRtEngine : InferenceEngine {
    override val runtime = "tflite"

    override fun versions(): Map<String, String> = linkedMapOf("litert" to BuildConfig.LITERT_VERSION)

    override fun load(file: File, artifact: PlanArtifact, threads: Int): LoadedModel {
        val options = CompiledModel.Options(Accelerator.CPU)
        if (threads > 0) options.cpuOptions = CompiledModel.CpuOptions(numThreads = threads)
        val model = CompiledModel.create(file.absolutePath, options)
        val inputs = model.createInputBuffers()
        val outputs = model.createOutputBuffers()
        return object : LoadedModel {
            override fun run(input: FloatArray): FloatArray {
                inputs[0].writeFloat(input)
                model.run(inputs, outputs)
                return outputs[0].readFloat()
            }

            override fun close() {
                inputs.forEach { it.close() }
                outputs.forEach { it.close() }
                model.close()
            }
        }
    }
}
