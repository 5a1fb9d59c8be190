import Foundation

/// A plan or manifest that does not follow its schema; the message names the field.
public struct PlanError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One artifact to measure; mirrors `artifacts[]` in edgelight/bench/bench_plan.schema.json.
public struct PlanArtifact: Codable, Equatable {
    public let file: String
    public let model: String
    public let runtime: String
    public let precision: String
    public let inputShape: [Int]
    public let params: Int?
    public let macs: Int?

    enum CodingKeys: String, CodingKey {
        case file, model, runtime, precision, params, macs
        case inputShape = "input_shape"
    }

    public init(file: String, model: String, runtime: String, precision: String, inputShape: [Int], params: Int? = nil, macs: Int? = nil) {
        self.file = file
        self.model = model
        self.runtime = runtime
        self.precision = precision
        self.inputShape = inputShape
        self.params = params
        self.macs = macs
    }

    public var inputElements: Int { inputShape.reduce(1, *) }
}

/// What the phone runs in benchmark mode (bench_plan.schema.json, schema_version 2).
public struct BenchPlan: Codable, Equatable {
    public static let defaultResultsFile = "bench_results.json"
    public static let planRuntimes = ["executorch", "tflite", "coreml", "onnx"]
    public static let precisions = ["fp32", "fp16", "w8a8", "w8"]

    public let schemaVersion: Int
    public let runs: Int
    public let warmup: Int
    public let threads: Int
    public let results: String?
    public let artifacts: [PlanArtifact]

    enum CodingKeys: String, CodingKey {
        case runs, warmup, threads, results, artifacts
        case schemaVersion = "schema_version"
    }

    public var resultsFileName: String { results ?? BenchPlan.defaultResultsFile }

    /// Decodes and checks the same rules as the JSON schema; unknown fields are rejected too.
    public static func parse(_ data: Data) throws -> BenchPlan {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw PlanError("plan: invalid JSON")
        }
        guard let root = object as? [String: Any] else { throw PlanError("plan: must be a JSON object") }
        // device and the artifacts' inputs, labels, dataset, logits, etdump are for edgelight-bench (the native runner); accepted, ignored here
        let unknown = Set(root.keys).subtracting(["schema_version", "runs", "warmup", "threads", "results", "artifacts", "device"])
        if !unknown.isEmpty { throw PlanError("plan: unknown field(s) \(unknown.sorted().joined(separator: ", "))") }
        let plan: BenchPlan
        do {
            plan = try JSONDecoder().decode(BenchPlan.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw PlanError("plan.\(key.stringValue): required")
        } catch let DecodingError.typeMismatch(_, context) {
            throw PlanError("plan.\(context.codingPath.map { $0.stringValue }.joined(separator: ".")): wrong type")
        } catch {
            throw PlanError("plan: \(error)")
        }
        try plan.validate()
        return plan
    }

    public func validate() throws {
        if schemaVersion != 2 { throw PlanError("plan.schema_version: must be 2, got \(schemaVersion)") }
        if runs < 2 { throw PlanError("plan.runs: must be >= 2, got \(runs)") }
        if warmup < 0 { throw PlanError("plan.warmup: must be >= 0, got \(warmup)") }
        if threads < 0 { throw PlanError("plan.threads: must be >= 0, got \(threads)") }
        let name = resultsFileName
        if name.isEmpty || name.contains("/") || name.hasPrefix(".") {
            throw PlanError("plan.results: must be a plain file name, got '\(name)'")
        }
        if artifacts.isEmpty { throw PlanError("plan.artifacts: must name at least one artifact") }
        for (i, a) in artifacts.enumerated() {
            let at = "plan.artifacts[\(i)]"
            if a.file.isEmpty || a.model.isEmpty { throw PlanError("\(at): file and model must not be empty") }
            if !BenchPlan.planRuntimes.contains(a.runtime) { throw PlanError("\(at).runtime: must be one of \(BenchPlan.planRuntimes), got '\(a.runtime)'") }
            if !BenchPlan.precisions.contains(a.precision) { throw PlanError("\(at).precision: must be one of \(BenchPlan.precisions), got '\(a.precision)'") }
            if a.inputShape.count != 4 || a.inputShape.contains(where: { $0 < 1 }) {
                throw PlanError("\(at).input_shape: must be 4 positive integers [N, C, H, W]")
            }
        }
    }

    /// Artifact files are named relative to the folder the plan file sits in.
    public func artifactURL(planURL: URL, artifact: PlanArtifact) -> URL {
        if artifact.file.hasPrefix("/") { return URL(fileURLWithPath: artifact.file) }
        return planURL.deletingLastPathComponent().appendingPathComponent(artifact.file)
    }
}
