package dev.edgelight.demo

import android.content.Context
import dev.edgelight.benchcore.ModelCatalog
import dev.edgelight.benchcore.ModelEntry
import dev.edgelight.demo.engines.allEngines
import java.io.File

/** A model the picker shows, and where it came from. */
data class AvailableModel(val entry: ModelEntry, val origin: Origin, val folder: File?) {
    enum class Origin { BUNDLED, PUSHED }

    val label: String get() = "${entry.displayName} (${origin.name.lowercase()})"
}

/**
 * Lists models from the APK's assets/models (written by `edgelight bundle --app android`) and from the folders
 * artifacts are pushed to with adb: /data/local/tmp/edgelight/ and the app's external files dir models/.
 * Pushed files need their .json sidecar next to them.
 */
class ModelSource(private val context: Context) {
    val pushedFolders: List<File> = listOfNotNull(File(PUSH_DIR), context.getExternalFilesDir("models"))

    fun list(): List<AvailableModel> {
        val bundled = readBundledManifest().map { AvailableModel(it, AvailableModel.Origin.BUNDLED, null) }
        val pushed = pushedFolders.flatMap { folder ->
            runCatching { ModelCatalog.scanFolder(folder) }.getOrDefault(emptyList())
                .filter { it.runtime in RUNNABLE }
                .map { AvailableModel(it, AvailableModel.Origin.PUSHED, folder) }
        }
        return (bundled + pushed).filter { it.entry.runtime in RUNNABLE }
    }

    /** A path the runtimes can open: pushed files as they are, bundled assets copied once into app storage. */
    fun fileFor(model: AvailableModel): File {
        model.folder?.let { return File(it, model.entry.file) }
        val target = File(context.filesDir, "models/${model.entry.file}")
        val assetPath = "$ASSET_DIR/${model.entry.file}"
        // openFd works for uncompressed assets (noCompress in build.gradle.kts); otherwise copy every time.
        val assetLength = runCatching { context.assets.openFd(assetPath).use { it.length } }.getOrDefault(-1L)
        if (!target.isFile || target.length() != assetLength) {
            target.parentFile?.mkdirs()
            context.assets.open(assetPath).use { input -> target.outputStream().use { input.copyTo(it) } }
        }
        return target
    }

    private fun readBundledManifest(): List<ModelEntry> {
        val text = runCatching {
            context.assets.open("$ASSET_DIR/${ModelCatalog.MANIFEST_NAME}").bufferedReader().use { it.readText() }
        }.getOrNull() ?: return emptyList()
        return ModelCatalog.parseManifest(text)
    }

    companion object {
        const val PUSH_DIR = "/data/local/tmp/edgelight"
        const val ASSET_DIR = "models"
        val RUNNABLE = allEngines().map { it.runtime }.toSet()
    }
}
