import Foundation

/// A runtime the app links (Core ML here). The app implements it; tests use fakes.
public protocol InferenceEngine {
    /// The plan's runtime name this engine serves, e.g. "coreml".
    var runtime: String { get }
    /// Library versions written into each record's `versions`.
    func versions() -> [String: String]
    /// Loads (and for Core ML compiles) the artifact; threads = 0 means the runtime's default.
    func load(url: URL, artifact: PlanArtifact, threads: Int) throws -> LoadedModel
}

/// A loaded model mapping one flat NCHW float input to one flat float output.
public protocol LoadedModel {
    func run(_ input: [Float]) throws -> [Float]
}

/// Runs a plan: per artifact, load (timed), one first inference (timed), `warmup` untimed runs, `runs` timed runs.
/// A failing artifact becomes an "error" record and the plan goes on; a runtime the app lacks, "not_runnable".
public struct BenchRunner {
    let engines: [String: InferenceEngine]
    let device: DeviceInfo
    let appVersions: [String: String]
    let clock: () -> UInt64
    let timestamp: () -> String

    public init(engines: [InferenceEngine], device: DeviceInfo, appVersions: [String: String] = [:],
                clock: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds },
                timestamp: @escaping () -> String = { ISO8601DateFormatter().string(from: Date()) }) {
        var byRuntime: [String: InferenceEngine] = [:]
        for engine in engines { byRuntime[engine.runtime] = engine }
        self.engines = byRuntime
        self.device = device
        self.appVersions = appVersions
        self.clock = clock
        self.timestamp = timestamp
    }

    /// Measures every artifact in order; `onRecords` gets the records so far after each one, so the app can
    /// rewrite its results file as it goes.
    public func run(plan: BenchPlan, planURL: URL, onRecords: ([BenchRecord]) -> Void = { _ in }) -> [BenchRecord] {
        var records: [BenchRecord] = []
        for artifact in plan.artifacts {
            records.append(measure(plan: plan, artifact: artifact, url: plan.artifactURL(planURL: planURL, artifact: artifact)))
            onRecords(records)
        }
        return records
    }

    public func measure(plan: BenchPlan, artifact: PlanArtifact, url: URL) -> BenchRecord {
        let exists = FileManager.default.fileExists(atPath: url.path)
        let info = ArtifactInfo(path: url.path, bytes: exists ? BenchRunner.size(of: url) : 0, sha256: nil)
        guard let engine = engines[artifact.runtime] else {
            return failed(plan, artifact, info, "not_runnable", "this app has no \(artifact.runtime) runtime", appVersions)
        }
        let versions = appVersions.merging(engine.versions()) { _, new in new }
        guard exists else { return failed(plan, artifact, info, "error", "artifact not found: \(url.path)", versions) }
        do {
            let input = BenchRunner.syntheticInput(count: artifact.inputElements)
            var nan = false
            let loadStart = clock()
            let model = try engine.load(url: url, artifact: artifact, threads: plan.threads)
            let loadMs = LatencyStats.millis(nanos: clock() - loadStart)
            let firstStart = clock()
            let firstOutput = try model.run(input)
            let firstMs = LatencyStats.millis(nanos: clock() - firstStart)
            nan = firstOutput.contains { $0.isNaN }
            for _ in 0..<plan.warmup {
                let output = try model.run(input)
                nan = nan || output.contains { $0.isNaN }
            }
            var samples: [Double] = []
            for _ in 0..<plan.runs {
                let start = clock()
                let output = try model.run(input)
                samples.append(LatencyStats.millis(nanos: clock() - start))
                nan = nan || output.contains { $0.isNaN }
            }
            let stats = try LatencyStats.of(loadMs: loadMs, firstMs: firstMs, samplesMs: samples, warmup: plan.warmup)
            return BenchRecord(model: artifact.model, runtime: artifact.runtime, precision: artifact.precision, device: device,
                               threads: plan.threads, status: "ok", artifact: info, latency: stats, params: artifact.params,
                               macs: artifact.macs, nanOutputs: nan, notes: nan ? ["NaN in the outputs"] : nil,
                               versions: versions, timestamp: timestamp())
        } catch {
            return failed(plan, artifact, info, "error", "\(error)", versions)
        }
    }

    private func failed(_ plan: BenchPlan, _ artifact: PlanArtifact, _ info: ArtifactInfo, _ status: String,
                        _ message: String, _ versions: [String: String]) -> BenchRecord {
        BenchRecord(model: artifact.model, runtime: artifact.runtime, precision: artifact.precision, device: device,
                    threads: plan.threads, status: status, error: message, artifact: info, params: artifact.params,
                    macs: artifact.macs, versions: versions, timestamp: timestamp())
    }

    /// The same deterministic inputs in [-1, 1) as the Android benchcore (same LCG and seed).
    public static func syntheticInput(count: Int, seed: UInt64 = 20261122) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
    }

    /// Bytes of a file, or of every file inside a folder such as an .mlpackage.
    public static func size(of url: URL) -> Int {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { return 0 }
        if !isDir.boolValue { return (try? fm.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0 }
        var total = 0
        if let walker = fm.enumerator(at: url, includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey]) {
            for case let file as URL in walker {
                let values = try? file.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey])
                if values?.isRegularFile == true { total += values?.fileSize ?? 0 }
            }
        }
        return total
    }
}
