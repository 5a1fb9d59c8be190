import SwiftUI

@main
struct EdgelightDemoApp: App {
    private let benchmark = BenchmarkRequest.from(arguments: CommandLine.arguments)

    var body: some Scene {
        WindowGroup {
            if let benchmark {
                BenchmarkView(request: benchmark)
            } else {
                ContentView()
            }
        }
    }
}

/// Shown in benchmark mode: runs the plan off the main thread, prints each line (visible with
/// `devicectl ... --console`), then exits so the launching command returns.
struct BenchmarkView: View {
    let request: BenchmarkRequest
    @State private var lines: [String] = []

    var body: some View {
        ScrollView {
            Text(lines.joined(separator: "\n"))
                .font(.system(.footnote, design: .monospaced))
                .frame(maxWidth: .infinity, alignment: .leading)
                .padding()
        }
        .task {
            UIApplication.shared.isIdleTimerDisabled = true
            await Task.detached(priority: .userInitiated) {
                BenchmarkMode.run(request) { line in
                    print(line)
                    Task { @MainActor in lines.append(line) }
                }
            }.value
            try? await Task.sleep(nanoseconds: 500_000_000)
            exit(0)
        }
    }
}
