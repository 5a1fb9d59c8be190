import BenchCore
import Foundation

/// Where the picker's models come from: the app bundle's Models folder (`edgelight bundle --app ios`) and the
/// app's Documents folder (files copied in with Finder, the Files app or `xcrun devicectl device copy to`).
struct LibraryModel: Identifiable, Hashable {
    let entry: ModelEntry
    let folder: URL
    var id: String { folder.lastPathComponent + "/" + entry.file }
    var url: URL { folder.appendingPathComponent(entry.file) }
    var label: String { entry.displayName + (folder == ModelLibrary.documents ? " (Documents)" : "") }
}

enum ModelLibrary {
    static let bundled = Bundle.main.resourceURL!.appendingPathComponent("Models", isDirectory: true)
    static let documents = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]

    /// Core ML models only: the demo links no ExecuTorch runtime (a .pte is listed in benchmark records as not_runnable).
    static func list() -> [LibraryModel] {
        [bundled, documents].flatMap { folder in
            ModelCatalog.scan(folder: folder)
                .filter { $0.runtime == "coreml" }
                .map { LibraryModel(entry: $0, folder: folder) }
        }
    }
}
