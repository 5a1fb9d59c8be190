import Foundation

/// The `device` object of a bench record; on iPhone kind is "ios" and computeUnits is cpuOnly, cpuAndGPU or all.
public struct DeviceInfo: Codable, Equatable {
    public var kind: String
    public var name: String
    public var serial: String?
    public var cpu: String?
    public var soc: String?
    public var os: String?
    public var coresPinned: String?
    public var computeUnits: String?

    // keys: device
    enum CodingKeys: String, CodingKey {
        case kind = "kind", name = "name", serial = "serial", cpu = "cpu", soc = "soc", os = "os"
        case coresPinned = "cores_pinned", computeUnits = "compute_units"
    }
    // end keys

    public init(kind: String, name: String, serial: String? = nil, cpu: String? = nil, soc: String? = nil,
                os: String? = nil, coresPinned: String? = nil, computeUnits: String? = nil) {
        self.kind = kind
        self.name = name
        self.serial = serial
        self.cpu = cpu
        self.soc = soc
        self.os = os
        self.coresPinned = coresPinned
        self.computeUnits = computeUnits
    }
}

/// The `artifact` object: what was measured. An .mlpackage is a folder, so it has no single sha256.
public struct ArtifactInfo: Codable, Equatable {
    public var path: String
    public var bytes: Int
    public var sha256: String?

    // keys: artifact
    enum CodingKeys: String, CodingKey {
        case path = "path", bytes = "bytes", sha256 = "sha256"
    }
    // end keys

    public init(path: String, bytes: Int, sha256: String?) {
        self.path = path
        self.bytes = bytes
        self.sha256 = sha256
    }
}

/// One measurement (bench_record.schema.json). status: "ok" (latency set), "error" or "not_runnable" (error set).
public struct BenchRecord: Codable, Equatable {
    public var schemaVersion = 2
    public var model: String
    public var runtime: String
    public var precision: String
    public var device: DeviceInfo
    public var threads: Int
    public var status: String
    public var error: String?
    public var artifact: ArtifactInfo
    public var latency: LatencyStats?
    public var params: Int?
    public var macs: Int?
    public var nanOutputs: Bool?
    public var notes: [String]?
    public var versions: [String: String]
    public var timestamp: String

    // keys: record
    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version", model = "model", runtime = "runtime", precision = "precision"
        case device = "device", threads = "threads", status = "status", error = "error", artifact = "artifact"
        case latency = "latency_ms", params = "params", macs = "macs", nanOutputs = "nan_outputs"
        case notes = "notes", versions = "versions", timestamp = "timestamp"
    }
    // end keys

    public init(model: String, runtime: String, precision: String, device: DeviceInfo, threads: Int, status: String,
                error: String? = nil, artifact: ArtifactInfo, latency: LatencyStats? = nil, params: Int? = nil,
                macs: Int? = nil, nanOutputs: Bool? = nil, notes: [String]? = nil, versions: [String: String], timestamp: String) {
        self.model = model
        self.runtime = runtime
        self.precision = precision
        self.device = device
        self.threads = threads
        self.status = status
        self.error = error
        self.artifact = artifact
        self.latency = latency
        self.params = params
        self.macs = macs
        self.nanOutputs = nanOutputs
        self.notes = notes
        self.versions = versions
        self.timestamp = timestamp
    }
}

/// A results file: {"schema_version": 2, "records": [...]}.
public struct ResultsFile: Codable, Equatable {
    public var schemaVersion = 2
    public var records: [BenchRecord]

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version", records
    }

    public init(records: [BenchRecord]) { self.records = records }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> ResultsFile {
        try JSONDecoder().decode(ResultsFile.self, from: data)
    }
}
