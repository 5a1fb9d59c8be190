package dev.edgelight.benchcore

import org.junit.Assert.assertEquals
import org.junit.Test

class ClassificationTest {
    @Test
    fun packsArgbAsNormalisedNchwPlanes() {
        // two pixels: pure red and a grey of 51 (0.2)
        val pixels = intArrayOf(0xFFFF0000.toInt(), 0xFF333333.toInt())
        val out = Classification.argbToNchw(pixels, 2, 1, listOf(0.5f, 0.5f, 0.5f), listOf(0.5f, 0.25f, 1f))
        val expected = floatArrayOf(1f, -0.6f, -2f, -1.2f, -0.5f, -0.3f)
        assertEquals(expected.size, out.size)
        for (i in expected.indices) assertEquals("index $i", expected[i], out[i], 1e-5f)
    }

    @Test
    fun oneChannelModelsGetLuma() {
        val out = Classification.argbToNchw(intArrayOf(0xFFFFFFFF.toInt()), 1, 1, listOf(0f), listOf(1f))
        assertEquals(1, out.size)
        assertEquals(1f, out[0], 1e-5f)
    }

    @Test
    fun softmaxIsStableAndSumsToOne() {
        val p = Classification.softmax(floatArrayOf(1000f, 1000f, -1000f))
        assertEquals(0.5f, p[0], 1e-6f)
        assertEquals(0.5f, p[1], 1e-6f)
        assertEquals(0f, p[2], 1e-6f)
    }

    @Test
    fun topKOrdersByProbabilityThenIndex() {
        val top = Classification.topK(floatArrayOf(0f, 3f, 1f, 3f, -2f, 2f), listOf("a", "b", "c", "d"), k = 5)
        assertEquals(listOf(1, 3, 5, 2, 0), top.map { it.index })
        assertEquals(listOf("b", "d", "class 5", "c", "a"), top.map { it.label })
        assertEquals(top[0].probability, top[1].probability, 0f)
    }
}
