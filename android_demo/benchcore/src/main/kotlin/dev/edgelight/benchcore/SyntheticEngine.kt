package dev.edgelight.benchcore

import java.io.File

/**
 * A stand-in runtime for machines with no phone runtime (CI, a plain JVM): it reads the artifact's bytes
 * on load and runs a fixed dot-product workload per inference. Its records say engine=synthetic in
 * `versions`, so they are never mistaken for real ExecuTorch or LiteRT numbers.
 */
class SyntheticEngine(override val runtime: String, private val classes: Int = 10) : InferenceEngine {

    override fun versions(): Map<String, String> = linkedMapOf("engine" to "synthetic")

    override fun load(file: File, artifact: PlanArtifact, threads: Int): LoadedModel {
        val bytes = file.readBytes()
        val weights = FloatArray(artifact.inputElements) { i -> (bytes[i % bytes.size.coerceAtLeast(1)].toInt() % 7) / 7f }
        return object : LoadedModel {
            override fun run(input: FloatArray): FloatArray {
                require(input.size == weights.size) { "input has ${input.size} values, the plan's shape needs ${weights.size}" }
                return FloatArray(classes) { c ->
                    var acc = 0f
                    var i = c
                    while (i < input.size) {
                        acc += input[i] * weights[i]
                        i += classes
                    }
                    acc
                }
            }

            override fun close() {}
        }
    }
}
