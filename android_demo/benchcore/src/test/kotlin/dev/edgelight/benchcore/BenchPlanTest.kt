package dev.edgelight.benchcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File

class BenchPlanTest {
    private val valid = """
        {"schema_version": 2, "runs": 20, "warmup": 3, "threads": 4, "results": "out.json",
         "artifacts": [{"file": "lrunet.pte", "model": "lrunet", "runtime": "executorch", "precision": "fp32",
                        "input_shape": [1, 3, 32, 32], "params": 95642, "macs": null}]}
    """

    @Test
    fun parsesAllFields() {
        val plan = BenchPlan.parse(valid)
        assertEquals(20, plan.runs)
        assertEquals(3, plan.warmup)
        assertEquals(4, plan.threads)
        assertEquals("out.json", plan.resultsFileName)
        val artifact = plan.artifacts.single()
        assertEquals(PlanArtifact("lrunet.pte", "lrunet", "executorch", "fp32", listOf(1, 3, 32, 32), 95642L, null), artifact)
        assertEquals(3 * 32 * 32, artifact.inputElements)
    }

    @Test
    fun resultsNameDefaultsToBenchResultsJson() {
        val plan = BenchPlan.parse(valid.replace("\"results\": \"out.json\",", ""))
        assertEquals("bench_results.json", plan.resultsFileName)
        assertNull(plan.artifacts[0].macs)
    }

    @Test
    fun artifactPathsAreRelativeToThePlanFolder() {
        val plan = BenchPlan.parse(valid)
        val file = plan.artifactFile(File("/data/local/tmp/edgelight/plan.json"), plan.artifacts[0])
        assertEquals(File("/data/local/tmp/edgelight/lrunet.pte"), file)
    }

    @Test
    fun rejectsWhatTheSchemaRejects() {
        val cases = mapOf(
            "\"runs\": 20" to "\"runs\": 1",
            "\"warmup\": 3" to "\"warmup\": -1",
            "\"schema_version\": 2" to "\"schema_version\": 3",
            "\"runtime\": \"executorch\"" to "\"runtime\": \"tensorrt\"",
            "\"precision\": \"fp32\"" to "\"precision\": \"int4\"",
            "[1, 3, 32, 32]" to "[3, 32, 32]",
            "[1, 3, 32, 32]" to "[1, 3, 0, 32]",
            "\"results\": \"out.json\"" to "\"results\": \"../escape.json\"",
            "\"threads\": 4" to "\"threads\": 4, \"extra\": true",
            "\"model\": \"lrunet\"" to "\"model\": \"\""
        )
        for ((from, to) in cases) {
            val text = valid.replace(from, to)
            assertTrue("test setup: '$from' not found", text != valid)
            try {
                BenchPlan.parse(text)
                fail("accepted an invalid plan: $to")
            } catch (e: PlanError) {
                assertTrue("message should name the field: ${e.message}", e.message!!.startsWith("plan"))
            }
        }
    }

    @Test
    fun emptyArtifactListIsAnError() {
        try {
            BenchPlan.parse("""{"schema_version": 2, "runs": 2, "warmup": 0, "threads": 0, "artifacts": []}""")
            fail("accepted an empty plan")
        } catch (e: PlanError) {
            assertEquals("plan.artifacts: must name at least one artifact", e.message)
        }
    }
}
