import BenchCore
import CoreML
import Foundation

/// The three Core ML compute-unit choices the demo offers, with the names bench records use.
enum ComputeChoice: String, CaseIterable, Identifiable {
    case cpuOnly, cpuAndGPU, all

    var id: String { rawValue }
    var title: String {
        switch self {
        case .cpuOnly: return "CPU"
        case .cpuAndGPU: return "CPU+GPU"
        case .all: return "All (ANE)"
        }
    }
    var units: MLComputeUnits {
        switch self {
        case .cpuOnly: return .cpuOnly
        case .cpuAndGPU: return .cpuAndGPU
        case .all: return .all
        }
    }
}

enum CoreMLError: Error, CustomStringConvertible {
    case notCoreML(String)
    case unsupportedInput(String)
    case noOutput

    var description: String {
        switch self {
        case .notCoreML(let file): return "\(file): not an .mlpackage or .mlmodelc"
        case .unsupportedInput(let name): return "input '\(name)' is not a multi-array; export with a TensorType input"
        case .noOutput: return "the model returned no multi-array output"
        }
    }
}

/// Runs .mlpackage models with Core ML on the chosen compute units. Packages are compiled once per file
/// into Application Support (compileModel), so `load` times MLModel(contentsOf:) of the compiled model only.
struct CoreMLEngine: InferenceEngine {
    let runtime = "coreml"
    let compute: ComputeChoice

    func versions() -> [String: String] { ["coreml-compute-units": compute.rawValue] }

    func load(url: URL, artifact: PlanArtifact, threads: Int) throws -> LoadedModel {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = compute.units
        let model = try MLModel(contentsOf: try CoreMLEngine.compiled(url), configuration: configuration)
        return try CoreMLModel(model: model, shape: artifact.inputShape)
    }

    /// The compiled .mlmodelc for a package, compiling it on first use (not part of any timing).
    static func compiled(_ url: URL) throws -> URL {
        if url.pathExtension == "mlmodelc" { return url }
        guard url.pathExtension == "mlpackage" else { throw CoreMLError.notCoreML(url.lastPathComponent) }
        let cache = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
            .appendingPathComponent("compiled", isDirectory: true)
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let stamp = (try? FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let target = cache.appendingPathComponent("\(url.deletingPathExtension().lastPathComponent)-\(Int(stamp)).mlmodelc")
        if FileManager.default.fileExists(atPath: target.path) { return target }
        let temporary = try MLModel.compileModel(at: url)
        try FileManager.default.moveItem(at: temporary, to: target)
        return target
    }
}

/// One Core ML model fed flat NCHW floats; input and output are its first multi-array features.
final class CoreMLModel: LoadedModel {
    private let model: MLModel
    private let inputName: String
    private let shape: [NSNumber]

    init(model: MLModel, shape: [Int]) throws {
        self.model = model
        guard let input = model.modelDescription.inputDescriptionsByName.sorted(by: { $0.key < $1.key }).first else {
            throw CoreMLError.unsupportedInput("?")
        }
        guard input.value.type == .multiArray else { throw CoreMLError.unsupportedInput(input.key) }
        inputName = input.key
        self.shape = shape.map { NSNumber(value: $0) }
    }

    func run(_ input: [Float]) throws -> [Float] {
        let array = try MLMultiArray(shape: shape, dataType: .float32)
        array.withUnsafeMutableBufferPointer(ofType: Float.self) { buffer, _ in
            for i in 0..<min(buffer.count, input.count) { buffer[i] = input[i] }
        }
        let features = try MLDictionaryFeatureProvider(dictionary: [inputName: MLFeatureValue(multiArray: array)])
        let result = try model.prediction(from: features)
        guard let output = result.featureNames.sorted().compactMap({ result.featureValue(for: $0)?.multiArrayValue }).first else {
            throw CoreMLError.noOutput
        }
        return (0..<output.count).map { output[$0].floatValue }
    }
}
