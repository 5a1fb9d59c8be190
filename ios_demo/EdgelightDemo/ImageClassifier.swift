import BenchCore
import CoreGraphics
import Foundation
import UIKit

/// Photo or camera frame in, top-5 and latency out: centre-crop, resize, normalise (BenchCore), run Core ML.
/// Unchecked Sendable: the app hands it between tasks but only ever uses it from one at a time.
struct ImageClassifier: @unchecked Sendable {
    let entry: ModelEntry
    let model: LoadedModel

    struct Result: Sendable {
        let top5: [Prediction]
        let preprocessMs: Double
        let inferenceMs: Double
    }

    func classify(_ image: UIImage) throws -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        let rgba = ImageClassifier.rgbaPixels(image, width: entry.width, height: entry.height)
        let input = Classification.rgbaToNCHW(rgba, width: entry.width, height: entry.height, mean: entry.mean, std: entry.std)
        let afterPreprocess = DispatchTime.now().uptimeNanoseconds
        let logits = try model.run(input)
        let end = DispatchTime.now().uptimeNanoseconds
        return Result(top5: Classification.topK(logits, labels: entry.labels, k: 5),
                      preprocessMs: LatencyStats.millis(nanos: afterPreprocess - start),
                      inferenceMs: LatencyStats.millis(nanos: end - afterPreprocess))
    }

    /// Draws the centre square of the upright image into a width x height RGBA buffer.
    static func rgbaPixels(_ image: UIImage, width: Int, height: Int) -> [UInt8] {
        // Redraw at scale 1 so EXIF orientation is applied and no screen traits are needed off the main thread.
        let format = UIGraphicsImageRendererFormat()
        format.scale = 1
        let upright = UIGraphicsImageRenderer(size: image.size, format: format).image { _ in image.draw(at: .zero) }
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        guard let cgImage = upright.cgImage else { return pixels }
        let side = min(cgImage.width, cgImage.height)
        let crop = CGRect(x: (cgImage.width - side) / 2, y: (cgImage.height - side) / 2, width: side, height: side)
        guard let square = cgImage.cropping(to: crop) else { return pixels }
        pixels.withUnsafeMutableBytes { buffer in
            let context = CGContext(data: buffer.baseAddress, width: width, height: height, bitsPerComponent: 8,
                                    bytesPerRow: width * 4, space: CGColorSpaceCreateDeviceRGB(),
                                    bitmapInfo: CGImageAlphaInfo.premultipliedLast.rawValue)
            context?.interpolationQuality = .high
            context?.draw(square, in: CGRect(x: 0, y: 0, width: width, height: height))
        }
        return pixels
    }
}
