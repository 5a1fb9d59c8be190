package dev.edgelight.demo.engines

import dev.edgelight.benchcore.InferenceEngine
import dev.edgelight.benchcore.LoadedModel
import dev.edgelight.benchcore.PlanArtifact
import dev.edgelight.demo.BuildConfig
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import java.io.File

/**
 * Runs .pte programs with the ExecuTorch Android library (XNNPACK, portable/optimized/quantized kernels).
 * The edgelight native kernels are there only when the app links the rebuilt AAR (BuildConfig.EDGELIGHT_KERNELS);
 * a program that needs them fails to load on the stock Maven AAR with a missing-operator error.
 */
class ExecuTorchEngine : InferenceEngine {
    override val runtime = "executorch"

    override fun versions(): Map<String, String> = linkedMapOf(
        "executorch-android" to BuildConfig.EXECUTORCH_VERSION,
        "edgelight-kernels" to if (BuildConfig.EDGELIGHT_KERNELS) "linked" else "absent"
    )

    override fun load(file: File, artifact: PlanArtifact, threads: Int): LoadedModel {
        // mmap keeps load cheap and memory honest; threads = 0 lets ExecuTorch pick its default.
        val module = Module.load(file.absolutePath, Module.LOAD_MODE_MMAP, threads)
        // Initialise the method now so its cost counts as load time, not as the first inference.
        val status = module.loadMethod("forward")
        if (status != 0) {
            module.destroy()
            throw IllegalStateException("ExecuTorch could not load method 'forward' (error 0x${Integer.toHexString(status)}); see logcat tag ExecuTorch")
        }
        val shape = LongArray(artifact.inputShape.size) { artifact.inputShape[it].toLong() }
        return object : LoadedModel {
            override fun run(input: FloatArray): FloatArray {
                val outputs = module.forward(EValue.from(Tensor.fromBlob(input, shape)))
                check(outputs.isNotEmpty()) { "ExecuTorch returned no output" }
                return outputs[0].toTensor().dataAsFloatArray
            }

            override fun close() = module.destroy()
        }
    }
}
