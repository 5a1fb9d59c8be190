// swift-tools-version:5.9
// The iOS app's plain logic (plan parsing, latency statistics, result records, preprocessing), with no
// UIKit or Core ML imports so `swift test` runs it on macOS or Linux.
import PackageDescription

let package = Package(
    name: "BenchCore",
    platforms: [.iOS(.v17), .macOS(.v14)],
    products: [.library(name: "BenchCore", targets: ["BenchCore"])],
    targets: [
        .target(name: "BenchCore"),
        .testTarget(name: "BenchCoreTests", dependencies: ["BenchCore"]),
    ]
)
