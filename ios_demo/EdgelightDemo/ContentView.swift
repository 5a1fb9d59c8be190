import BenchCore
import PhotosUI
import SwiftUI

/// Pick a model and compute units, classify a photo or a camera shot, see top-5 and latency.
@MainActor
final class ClassifierState: ObservableObject {
    @Published var models: [LibraryModel] = ModelLibrary.list()
    @Published var selected: LibraryModel?
    @Published var compute: ComputeChoice = .all
    @Published var image: UIImage?
    @Published var top5: [Prediction] = []
    @Published var status = ""

    private var classifier: ImageClassifier?

    init() { selected = models.first }

    /// (Re)loads the selected model on the chosen compute units, off the main thread.
    func reload() async {
        guard let model = selected else {
            status = "No Core ML models: run `edgelight bundle --app ios …` or copy an .mlpackage + .json sidecar into Documents."
            return
        }
        status = "loading \(model.entry.file) on \(compute.title)…"
        classifier = nil
        let compute = self.compute
        do {
            let (loaded, ms) = try await Task.detached(priority: .userInitiated) { () -> (ImageClassifier, Double) in
                let artifact = PlanArtifact(file: model.entry.file, model: model.entry.model, runtime: "coreml",
                                            precision: model.entry.precision, inputShape: model.entry.inputShape)
                _ = try CoreMLEngine.compiled(model.url)
                let start = DispatchTime.now().uptimeNanoseconds
                let loaded = try CoreMLEngine(compute: compute).load(url: model.url, artifact: artifact, threads: 0)
                return (ImageClassifier(entry: model.entry, model: loaded), LatencyStats.millis(nanos: DispatchTime.now().uptimeNanoseconds - start))
            }.value
            classifier = loaded
            status = String(format: "loaded in %.1f ms", ms)
            if let image { await classify(image) }
        } catch {
            status = "load failed: \(error)"
        }
    }

    func classify(_ image: UIImage) async {
        self.image = image
        guard let classifier else { return }
        do {
            let result = try await Task.detached(priority: .userInitiated) { try classifier.classify(image) }.value
            top5 = result.top5
            status = String(format: "inference %.2f ms · preprocessing %.2f ms · %@", result.inferenceMs, result.preprocessMs, compute.title)
        } catch {
            status = "inference failed: \(error)"
        }
    }
}

struct ContentView: View {
    @StateObject private var state = ClassifierState()
    @State private var photoItem: PhotosPickerItem?
    @State private var showCamera = false

    var body: some View {
        NavigationStack {
            Form {
                Section("Model") {
                    Picker("Model", selection: $state.selected) {
                        ForEach(state.models) { Text($0.label).tag(Optional($0)) }
                    }
                    Picker("Compute units", selection: $state.compute) {
                        ForEach(ComputeChoice.allCases) { Text($0.title).tag($0) }
                    }
                    .pickerStyle(.segmented)
                }
                Section("Image") {
                    HStack {
                        PhotosPicker("Photo", selection: $photoItem, matching: .images)
                        Spacer()
                        Button("Camera") { showCamera = true }.disabled(!CameraPicker.isAvailable)
                    }
                    if let image = state.image {
                        Image(uiImage: image).resizable().scaledToFit().frame(maxHeight: 240)
                    }
                }
                Section("Top 5") {
                    ForEach(state.top5, id: \.index) { p in
                        HStack {
                            Text(p.label)
                            Spacer()
                            Text(String(format: "%.1f%%", 100 * p.probability)).monospacedDigit()
                        }
                    }
                    Text(state.status).font(.footnote).foregroundStyle(.secondary)
                }
            }
            .navigationTitle("edgelight")
        }
        .task { await state.reload() }
        .onChange(of: state.selected) { Task { await state.reload() } }
        .onChange(of: state.compute) { Task { await state.reload() } }
        .onChange(of: photoItem) {
            Task {
                if let data = try? await photoItem?.loadTransferable(type: Data.self), let image = UIImage(data: data) {
                    await state.classify(image)
                }
            }
        }
        .sheet(isPresented: $showCamera) {
            CameraPicker { image in Task { await state.classify(image) } }.ignoresSafeArea()
        }
    }
}
