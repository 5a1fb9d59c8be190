import Foundation

/// A model the app can pick: artifact file plus preprocessing and labels from the bundle manifest or a sidecar.
public struct ModelEntry: Codable, Equatable, Identifiable, Hashable {
    public let file: String
    public let model: String
    public let runtime: String
    public let precision: String
    public let inputShape: [Int]
    public let mean: [Float]
    public let std: [Float]
    public let labels: [String]

    enum CodingKeys: String, CodingKey {
        case file, model, runtime, precision, mean, std, labels
        case inputShape = "input_shape"
    }

    public var id: String { file }
    public var height: Int { inputShape[2] }
    public var width: Int { inputShape[3] }
    public var displayName: String { "\(model) · \(runtime) · \(precision)" }

    public func validate(at place: String) throws {
        if !BenchPlan.planRuntimes.contains(runtime) { throw PlanError("\(place).runtime: unknown '\(runtime)'") }
        if !BenchPlan.precisions.contains(precision) { throw PlanError("\(place).precision: unknown '\(precision)'") }
        if inputShape.count != 4 || inputShape.contains(where: { $0 < 1 }) { throw PlanError("\(place).input_shape: must be [N, C, H, W]") }
        let channels = inputShape[1]
        if channels != 1 && channels != 3 { throw PlanError("\(place).input_shape: the app feeds 1 or 3 channels") }
        if mean.count != channels || std.count != channels { throw PlanError("\(place): mean and std need one value per channel (\(channels))") }
        if std.contains(where: { $0 <= 0 }) { throw PlanError("\(place).std: values must be > 0") }
    }
}

public enum ModelCatalog {
    public static let manifestName = "manifest.json"

    /// The runtime an artifact needs, from its suffix.
    public static func runtime(forFile name: String) -> String? {
        if name.hasSuffix(".pte") { return "executorch" }
        if name.hasSuffix(".tflite") { return "tflite" }
        if name.hasSuffix(".mlpackage") || name.hasSuffix(".mlmodelc") { return "coreml" }
        return nil
    }

    private struct Manifest: Codable {
        let schemaVersion: Int
        let models: [ModelEntry]
        enum CodingKeys: String, CodingKey {
            case models
            case schemaVersion = "schema_version"
        }
    }

    /// The manifest `edgelight bundle --app ios` writes into the app's Models folder.
    public static func parseManifest(_ data: Data) throws -> [ModelEntry] {
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw PlanError("manifest: \(error)")
        }
        if manifest.schemaVersion != 1 { throw PlanError("manifest.schema_version: must be 1") }
        for (i, entry) in manifest.models.enumerated() { try entry.validate(at: "manifest.models[\(i)]") }
        return manifest.models
    }

    private struct Sidecar: Codable {
        let model: String
        let precision: String
        let inputShape: [Int]
        let mean: [Float]
        let std: [Float]
        let labels: [String]
        enum CodingKeys: String, CodingKey {
            case model, precision, mean, std, labels
            case inputShape = "input_shape"
        }
    }

    /// The sidecar next to an artifact copied in through the Files app (`m.mlpackage` -> `m.mlpackage.json`).
    public static func parseSidecar(artifactName: String, data: Data) throws -> ModelEntry {
        guard let kind = runtime(forFile: artifactName) else { throw PlanError("\(artifactName): not an exported artifact") }
        let sidecar: Sidecar
        do {
            sidecar = try JSONDecoder().decode(Sidecar.self, from: data)
        } catch {
            throw PlanError("\(artifactName).json: \(error)")
        }
        let entry = ModelEntry(file: artifactName, model: sidecar.model, runtime: kind, precision: sidecar.precision,
                               inputShape: sidecar.inputShape, mean: sidecar.mean, std: sidecar.std, labels: sidecar.labels)
        try entry.validate(at: "\(artifactName).json")
        return entry
    }

    /// Bundled models first (manifest), then any artifact with a sidecar in `folder` that the manifest does not list.
    public static func scan(folder: URL) -> [ModelEntry] {
        var entries: [ModelEntry] = []
        if let data = try? Data(contentsOf: folder.appendingPathComponent(manifestName)),
           let listed = try? parseManifest(data) {
            entries = listed
        }
        let known = Set(entries.map { $0.file })
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        for name in names.sorted() where runtime(forFile: name) != nil && !known.contains(name) {
            if let data = try? Data(contentsOf: folder.appendingPathComponent(name + ".json")),
               let entry = try? parseSidecar(artifactName: name, data: data) {
                entries.append(entry)
            }
        }
        return entries
    }
}
