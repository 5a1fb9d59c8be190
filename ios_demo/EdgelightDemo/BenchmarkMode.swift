import BenchCore
import Foundation
import UIKit

/// Benchmark mode, started with launch arguments (see ios_demo/README.md "Benchmark mode"); edgelight/bench/transport.py runs:
///
///   xcrun devicectl device process launch --device UDID --terminate-existing --console dev.edgelight.demo \
///       --bench-plan Documents/edgelight-bench/bench_plan.json [--compute-units cpuOnly,cpuAndGPU,all]
///
/// `--benchmark-plan` is accepted as well. A relative plan path is resolved against the app's data container
/// (NSHomeDirectory()), where `devicectl device copy to --domain-type appDataContainer` puts files. Artifact names
/// are relative to the plan's folder, and the results file <plan.results> (default bench_results.json) is written
/// into that same folder, rewritten atomically after every artifact. The plan runs once per compute-unit choice.
/// A plan that cannot be read leaves bench_error.txt there instead. The app then exits, which ends a `--console` launch.
struct BenchmarkRequest {
    let planURL: URL
    let computeChoices: [ComputeChoice]

    /// nil when the app was launched normally.
    static func from(arguments: [String]) -> BenchmarkRequest? {
        guard let i = arguments.firstIndex(where: { $0 == "--bench-plan" || $0 == "--benchmark-plan" }), i + 1 < arguments.count else {
            return nil
        }
        let path = arguments[i + 1]
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(path)
        var choices: [ComputeChoice] = [.all]
        if let j = arguments.firstIndex(of: "--compute-units"), j + 1 < arguments.count {
            choices = arguments[j + 1].split(separator: ",").compactMap { ComputeChoice(rawValue: String($0)) }
        }
        return BenchmarkRequest(planURL: url, computeChoices: choices.isEmpty ? [.all] : choices)
    }
}

enum BenchmarkMode {
    static let errorFile = "bench_error.txt"

    /// Runs the plan and writes the results file next to it; reports progress through `log`. Never throws.
    static func run(_ request: BenchmarkRequest, log: (String) -> Void) {
        let folder = request.planURL.deletingLastPathComponent()
        try? FileManager.default.removeItem(at: folder.appendingPathComponent(errorFile))
        try? FileManager.default.removeItem(at: folder.appendingPathComponent(BenchPlan.defaultResultsFile))
        let plan: BenchPlan
        do {
            plan = try BenchPlan.parse(Data(contentsOf: request.planURL))
        } catch {
            fail("\(request.planURL.path): \(error)", folder: folder, log: log)
            return
        }
        let resultsURL = folder.appendingPathComponent(plan.resultsFileName)
        try? FileManager.default.removeItem(at: resultsURL)
        log("plan: \(plan.artifacts.count) artifacts × \(request.computeChoices.map { $0.rawValue })")

        var finished: [BenchRecord] = []
        for choice in request.computeChoices {
            // Compile packages up front so no compile time leaks into the load timing.
            for artifact in plan.artifacts where artifact.runtime == "coreml" {
                _ = try? CoreMLEngine.compiled(plan.artifactURL(planURL: request.planURL, artifact: artifact))
            }
            let runner = BenchRunner(engines: [CoreMLEngine(compute: choice)], device: deviceInfo(choice),
                                     appVersions: ["app": appVersion, "ios": UIDevice.current.systemVersion])
            let records = runner.run(plan: plan, planURL: request.planURL) { soFar in
                do {
                    try ResultsFile(records: finished + soFar).encoded().write(to: resultsURL, options: .atomic)
                } catch {
                    log("writing \(resultsURL.path): \(error)")
                }
            }
            for record in records {
                log("\(record.model) \(choice.rawValue): \(record.status) \(record.latency.map { String(format: "p50 %.3f ms", $0.p50) } ?? record.error ?? "")")
            }
            finished += records
        }
        if FileManager.default.fileExists(atPath: resultsURL.path) {
            log("EDGELIGHT_BENCH_DONE \(resultsURL.path)")
        } else {
            fail("no results written to \(resultsURL.path)", folder: folder, log: log)
        }
    }

    private static func fail(_ reason: String, folder: URL, log: (String) -> Void) {
        try? (reason + "\n").write(to: folder.appendingPathComponent(errorFile), atomically: true, encoding: .utf8)
        log("EDGELIGHT_BENCH_FAILED \(reason)")
    }

    static var appVersion: String { Bundle.main.infoDictionary?["CFBundleShortVersionString"] as? String ?? "0" }

    /// Device model identifier (e.g. iPhone16,1) from uname; the host maps it to a marketing name if it wants one.
    static func deviceInfo(_ choice: ComputeChoice) -> DeviceInfo {
        var system = utsname()
        uname(&system)
        let machine = withUnsafeBytes(of: &system.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return DeviceInfo(kind: "ios", name: machine, cpu: "arm64", os: "iOS \(UIDevice.current.systemVersion)",
                          computeUnits: choice.rawValue)
    }
}
