import XCTest
@testable import BenchCore

/// The shared sample files live in the repository's tests/fixtures/apps (the Python tests read the same ones).
private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("tests/fixtures/apps")

final class BenchPlanTests: XCTestCase {
    func testParsesTheSharedSamplePlan() throws {
        let plan = try BenchPlan.parse(Data(contentsOf: fixtures.appendingPathComponent("sample_plan.json")))
        XCTAssertEqual(plan.runs, 30)
        XCTAssertEqual(plan.warmup, 5)
        XCTAssertEqual(plan.resultsFileName, "bench_results.json")
        XCTAssertEqual(plan.artifacts.map { $0.runtime }, ["executorch", "tflite", "coreml"])
        XCTAssertEqual(plan.artifacts[0].params, 95642)
        XCTAssertEqual(plan.artifacts[0].inputElements, 3 * 32 * 32)
        let url = plan.artifactURL(planURL: URL(fileURLWithPath: "/tmp/x/plan.json"), artifact: plan.artifacts[2])
        XCTAssertEqual(url.path, "/tmp/x/mobilenetv2-cifar-100_fp16.mlpackage")
    }

    func testRejectsWhatTheSchemaRejects() {
        let base = #"{"schema_version": 2, "runs": 5, "warmup": 0, "threads": 0, "artifacts": [{"file": "a.pte", "model": "m", "runtime": "executorch", "precision": "fp32", "input_shape": [1, 3, 8, 8]}]}"#
        XCTAssertNoThrow(try BenchPlan.parse(Data(base.utf8)))
        let broken = [
            base.replacingOccurrences(of: "\"runs\": 5", with: "\"runs\": 1"),
            base.replacingOccurrences(of: "executorch", with: "tensorrt"),
            base.replacingOccurrences(of: "[1, 3, 8, 8]", with: "[3, 8, 8]"),
            base.replacingOccurrences(of: "\"threads\": 0", with: "\"threads\": 0, \"extra\": 1"),
            base.replacingOccurrences(of: "\"warmup\": 0", with: "\"warmup\": 0, \"results\": \"../x.json\""),
        ]
        for text in broken {
            XCTAssertThrowsError(try BenchPlan.parse(Data(text.utf8)), text)
        }
    }
}

final class LatencyStatsTests: XCTestCase {
    func testMatchesTheHostStatistics() throws {
        let s = try LatencyStats.of(loadMs: 10, firstMs: 5, samplesMs: [4, 1, 3, 2], warmup: 2)
        XCTAssertEqual(s.mean, 2.5, accuracy: 1e-12)
        XCTAssertEqual(s.std, (5.0 / 3.0).squareRoot(), accuracy: 1e-12)  // ddof=1
        XCTAssertEqual(s.p50, 2.5, accuracy: 1e-12)
        XCTAssertEqual(s.p90, 3.7, accuracy: 1e-12)
        XCTAssertEqual(s.p99, 3.97, accuracy: 1e-12)
        XCTAssertEqual(s.min, 1)
        XCTAssertEqual(s.max, 4)
        XCTAssertEqual(s.runs, 4)
        XCTAssertThrowsError(try LatencyStats.of(loadMs: 0, firstMs: 0, samplesMs: [1], warmup: 0))
    }
}

private struct FakeModel: LoadedModel {
    let output: [Float]
    func run(_ input: [Float]) throws -> [Float] { output }
}

private struct FakeEngine: InferenceEngine {
    let runtime = "coreml"
    func versions() -> [String: String] { ["coreml": "fake"] }
    func load(url: URL, artifact: PlanArtifact, threads: Int) throws -> LoadedModel { FakeModel(output: [0.1, 0.9]) }
}

final class BenchRunnerTests: XCTestCase {
    func testRunsAPlanIntoSchemaShapedRecords() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("m.mlpackage"), withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("m.mlpackage/weights.bin"))
        let plan = BenchPlan(schemaVersion: 2, runs: 4, warmup: 1, threads: 0, results: nil, artifacts: [
            PlanArtifact(file: "m.mlpackage", model: "m", runtime: "coreml", precision: "fp16", inputShape: [1, 3, 4, 4]),
            PlanArtifact(file: "m.pte", model: "m", runtime: "executorch", precision: "fp32", inputShape: [1, 3, 4, 4]),
            PlanArtifact(file: "gone.mlpackage", model: "m", runtime: "coreml", precision: "fp32", inputShape: [1, 3, 4, 4]),
        ])
        var now: UInt64 = 0
        let runner = BenchRunner(engines: [FakeEngine()], device: DeviceInfo(kind: "ios", name: "iPhone", computeUnits: "all"),
                                 clock: { now += 3_000_000; return now }, timestamp: { "2026-11-22T08:00:00Z" })
        var handedOver: [Int] = []
        let records = runner.run(plan: plan, planURL: dir.appendingPathComponent("plan.json")) { handedOver.append($0.count) }
        XCTAssertEqual(records.map { $0.status }, ["ok", "not_runnable", "error"])
        XCTAssertEqual(handedOver, [1, 2, 3])
        XCTAssertEqual(records[0].latency?.p50, 3)
        XCTAssertEqual(records[0].latency?.runs, 4)
        XCTAssertEqual(records[0].artifact.bytes, 3)
        XCTAssertEqual(records[0].nanOutputs, false)

        let data = try ResultsFile(records: records).encoded()
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let first = (json["records"] as! [[String: Any]])[0]
        for key in ["schema_version", "model", "runtime", "precision", "device", "threads", "status", "artifact", "versions", "timestamp", "latency_ms"] {
            XCTAssertNotNil(first[key], key)
        }
        XCTAssertEqual((first["device"] as! [String: Any])["compute_units"] as? String, "all")
    }

    func testSyntheticInputMatchesAndroid() {
        let a = BenchRunner.syntheticInput(count: 1000)
        XCTAssertEqual(a, BenchRunner.syntheticInput(count: 1000))
        XCTAssertTrue(a.allSatisfy { $0 >= -1 && $0 < 1 })
    }

    func testDecodesTheSharedSampleResults() throws {
        let results = try ResultsFile.decode(Data(contentsOf: fixtures.appendingPathComponent("sample_results.json")))
        XCTAssertEqual(results.records.count, 4)
        XCTAssertEqual(results.records[2].device.computeUnits, "all")
        XCTAssertEqual(results.records[0].latency?.runs, 30)
    }
}

final class ClassificationTests: XCTestCase {
    func testTopKAndNormalisation() {
        let top = Classification.topK([0, 3, 1, 3, -2, 2], labels: ["a", "b", "c", "d"], k: 5)
        XCTAssertEqual(top.map { $0.index }, [1, 3, 5, 2, 0])
        XCTAssertEqual(top[2].label, "class 5")
        let x = Classification.rgbaToNCHW([255, 0, 0, 255, 51, 51, 51, 255], width: 2, height: 1,
                                          mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 1])
        let expected: [Float] = [1, -0.6, -2, -1.2, -0.5, -0.3]
        for (a, b) in zip(x, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testCatalogReadsASidecar() throws {
        let sidecar = #"{"model": "m", "precision": "fp16", "input_shape": [1, 3, 32, 32], "mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2], "labels": ["cat"]}"#
        let entry = try ModelCatalog.parseSidecar(artifactName: "m.mlpackage", data: Data(sidecar.utf8))
        XCTAssertEqual(entry.runtime, "coreml")
        XCTAssertEqual(entry.width, 32)
        XCTAssertThrowsError(try ModelCatalog.parseSidecar(artifactName: "m.onnx", data: Data(sidecar.utf8)))
    }
}
