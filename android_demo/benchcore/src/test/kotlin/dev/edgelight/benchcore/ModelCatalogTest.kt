package dev.edgelight.benchcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder

class ModelCatalogTest {
    @get:Rule
    val tmp = TemporaryFolder()

    private val sidecar = """{"model": "lrunet", "precision": "w8a8", "input_shape": [1, 3, 32, 32],
        "mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26], "labels": ["cat", "dog"], "verification": {"max_abs_diff": 0.001}}"""

    @Test
    fun runtimeFollowsTheSuffix() {
        assertEquals("executorch", ModelCatalog.runtimeFor("a.pte"))
        assertEquals("tflite", ModelCatalog.runtimeFor("a.tflite"))
        assertEquals("coreml", ModelCatalog.runtimeFor("a.mlpackage"))
        assertEquals("onnx", ModelCatalog.runtimeFor("a.onnx"))
        assertNull(ModelCatalog.runtimeFor("a.engine"))
    }

    @Test
    fun readsASidecar() {
        val entry = ModelCatalog.parseSidecar("lrunet_w8a8.tflite", sidecar)
        assertEquals("tflite", entry.runtime)
        assertEquals("w8a8", entry.precision)
        assertEquals(32, entry.width)
        assertEquals(listOf("cat", "dog"), entry.labels)
        assertEquals(0.49f, entry.mean[0], 1e-6f)
        assertEquals("lrunet · tflite · w8a8", entry.displayName)
    }

    @Test
    fun readsTheBundleManifest() {
        val manifest = """{"schema_version": 1, "app": "android", "models": [
            {"file": "a.pte", "model": "shiftresnet20", "runtime": "executorch", "precision": "fp32",
             "input_shape": [1, 1, 8, 8], "mean": [0.5], "std": [0.5], "labels": ["0", "1"], "bytes": 10, "sha256": "ab"}]}"""
        val entry = ModelCatalog.parseManifest(manifest).single()
        assertEquals("a.pte", entry.file)
        assertEquals(listOf(1, 1, 8, 8), entry.inputShape)
    }

    @Test
    fun meanMustMatchTheChannels() {
        try {
            ModelCatalog.parseSidecar("m.pte", sidecar.replace("[0.49, 0.48, 0.45]", "[0.5]"))
            fail("accepted a 1-value mean for 3 channels")
        } catch (e: PlanError) {
            assertEquals("m.pte.json.mean: must have one value per input channel (3), got 1", e.message)
        }
    }

    @Test
    fun scanFolderListsOnlyArtifactsWithSidecars() {
        val dir = tmp.newFolder("pushed")
        dir.resolve("b.pte").writeText("x")
        dir.resolve("b.pte.json").writeText(sidecar)
        dir.resolve("a.tflite").writeText("x")
        dir.resolve("a.tflite.json").writeText(sidecar)
        dir.resolve("nolabel.pte").writeText("x")
        dir.resolve("plan.json").writeText("{}")
        val entries = ModelCatalog.scanFolder(dir)
        assertEquals(listOf("a.tflite", "b.pte"), entries.map { it.file })
        assertTrue(ModelCatalog.scanFolder(dir.resolve("absent")).isEmpty())
    }
}
