package dev.edgelight.demo.engines

import dev.edgelight.benchcore.InferenceEngine

/** Every runtime the app links, one engine each (the runtime records' `apps` list names the same ones). */
fun allEngines(): List<InferenceEngine> = listOf(ExecuTorchEngine(), LiteRtEngine(), OnnxRuntimeEngine())
