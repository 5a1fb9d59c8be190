package dev.edgelight.benchcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class JsonTest {
    @Test
    fun parsesNestedValuesWithKotlinTypes() {
        val value = Json.parse("""{"a": [1, 2.5, -3e2, true, null], "b": {"c": "x\"y\\n\u00e9"}}""") as Map<*, *>
        assertEquals(listOf(1L, 2.5, -300.0, true, null), value["a"])
        assertEquals("x\"y\\n\u00e9", (value["b"] as Map<*, *>)["c"])
    }

    @Test
    fun writesAndReadsBackTheSameValue() {
        val original = linkedMapOf<String, Any?>(
            "name" to "line\nbreak \"quoted\" \u0001", "shape" to listOf(1L, 3L, 32L, 32L),
            "mean" to 0.25, "none" to null, "nested" to listOf(linkedMapOf("ok" to true))
        )
        val text = Json.write(original)
        assertEquals(original, Json.parse(text))
        assertTrue("number arrays stay on one line", text.contains("[1, 3, 32, 32]"))
        assertTrue("control characters are escaped", text.contains("\\u0001"))
    }

    @Test
    fun keepsKeyOrder() {
        val text = Json.write(linkedMapOf("z" to 1, "a" to 2))
        assertTrue(text.indexOf("\"z\"") < text.indexOf("\"a\""))
    }

    @Test
    fun rejectsMalformedInput() {
        for (bad in listOf("{", "[1,]", "{\"a\" 1}", "tru", "{\"a\":1} x", "\"open", "{\"a\":1,\"a\":2}", "-")) {
            try {
                Json.parse(bad)
                fail("parsed invalid JSON: $bad")
            } catch (e: Json.ParseError) {
                assertTrue(e.message!!.startsWith("invalid JSON at offset"))
            }
        }
    }

    @Test
    fun refusesNaN() {
        try {
            Json.write(listOf(Double.NaN))
            fail("wrote NaN")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("NaN"))
        }
    }

    @Test
    fun largeIntegersBecomeDoubles() {
        assertEquals(1.0e20, Json.parse("100000000000000000000"))
        assertNull(Json.parse("null"))
    }
}
