import Foundation

/// One of the top-k classes shown under the image.
public struct Prediction: Equatable, Sendable {
    public let index: Int
    public let label: String
    public let probability: Float
}

/// Pixels in, top-k classes out: the plain math between the camera and Core ML (same as Android's benchcore).
public enum Classification {
    /// RGBA bytes (row-major, 4 bytes per pixel) -> flat NCHW floats, scaled to [0, 1] then normalised with the
    /// sidecar's per-channel mean and std. One channel takes the BT.601 luma, three are R, G, B.
    public static func rgbaToNCHW(_ rgba: [UInt8], width: Int, height: Int, mean: [Float], std: [Float]) -> [Float] {
        precondition(rgba.count == width * height * 4 && mean.count == std.count && (mean.count == 1 || mean.count == 3))
        let plane = width * height
        var out = [Float](repeating: 0, count: mean.count * plane)
        for i in 0..<plane {
            let r = Float(rgba[4 * i]) / 255, g = Float(rgba[4 * i + 1]) / 255, b = Float(rgba[4 * i + 2]) / 255
            if mean.count == 1 {
                out[i] = (0.299 * r + 0.587 * g + 0.114 * b - mean[0]) / std[0]
            } else {
                out[i] = (r - mean[0]) / std[0]
                out[plane + i] = (g - mean[1]) / std[1]
                out[2 * plane + i] = (b - mean[2]) / std[2]
            }
        }
        return out
    }

    /// Numerically stable softmax.
    public static func softmax(_ logits: [Float]) -> [Float] {
        guard let maxLogit = logits.max() else { return [] }
        let exps = logits.map { Float(exp(Double($0 - maxLogit))) }
        let sum = exps.reduce(0, +)
        return exps.map { $0 / sum }
    }

    /// The k most probable classes, highest first; ties keep the lower class index first.
    public static func topK(_ logits: [Float], labels: [String], k: Int = 5) -> [Prediction] {
        let p = softmax(logits)
        return p.indices
            .sorted { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
            .prefix(k)
            .map { Prediction(index: $0, label: $0 < labels.count ? labels[$0] : "class \($0)", probability: p[$0]) }
    }
}
