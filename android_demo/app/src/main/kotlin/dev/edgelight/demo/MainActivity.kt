package dev.edgelight.demo

import android.Manifest
import android.content.pm.PackageManager
import android.os.Bundle
import android.util.Log
import android.view.View
import android.widget.AdapterView
import android.widget.ArrayAdapter
import android.widget.Spinner
import android.widget.TextView
import androidx.activity.ComponentActivity
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import dev.edgelight.demo.engines.allEngines
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Live camera classification: pick a bundled or pushed model, see top-5 and per-frame latency. */
class MainActivity : ComponentActivity() {
    private lateinit var picker: Spinner
    private lateinit var previewView: PreviewView
    private lateinit var latencyText: TextView
    private lateinit var top5Text: TextView
    private lateinit var models: List<AvailableModel>
    private lateinit var source: ModelSource

    // Loading and inference share this one thread, so a model is never swapped mid-frame.
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var classifier: FrameClassifier? = null
    private val engines = allEngines().associateBy { it.runtime }

    private val cameraPermission = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (granted) startCamera() else top5Text.setText(R.string.camera_denied)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        picker = findViewById(R.id.model_picker)
        previewView = findViewById(R.id.preview)
        latencyText = findViewById(R.id.latency)
        top5Text = findViewById(R.id.top5)

        source = ModelSource(this)
        models = runCatching { source.list() }.getOrElse {
            top5Text.text = "model list: ${it.message}"
            emptyList()
        }
        if (models.isEmpty()) top5Text.setText(R.string.no_models)
        picker.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_dropdown_item, models.map { it.label })
        picker.onItemSelectedListener = object : AdapterView.OnItemSelectedListener {
            override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = select(models[position])
            override fun onNothingSelected(parent: AdapterView<*>?) {}
        }

        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            cameraPermission.launch(Manifest.permission.CAMERA)
        }
    }

    private fun select(model: AvailableModel) {
        latencyText.text = "loading ${model.entry.file}…"
        worker.execute {
            classifier?.close()
            classifier = null
            val message = try {
                val engine = engines.getValue(model.entry.runtime)
                val start = System.nanoTime()
                classifier = FrameClassifier(model.entry, engine, source.fileFor(model), threads = 0)
                String.format(Locale.ROOT, "loaded in %.1f ms", (System.nanoTime() - start) / 1e6)
            } catch (e: Exception) {
                Log.e(TAG, "load ${model.entry.file}", e)
                "load failed: ${e.javaClass.simpleName}: ${e.message}"
            }
            runOnUiThread { latencyText.text = message }
        }
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val preview = Preview.Builder().build().also { it.setSurfaceProvider(previewView.surfaceProvider) }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(worker) { frame -> analyze(frame) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(frame: ImageProxy) {
        frame.use {
            val current = classifier ?: return
            val result = try {
                current.classify(it.toBitmap(), it.imageInfo.rotationDegrees)
            } catch (e: Exception) {
                Log.e(TAG, "inference", e)
                runOnUiThread { latencyText.text = "inference failed: ${e.message}" }
                return
            }
            val latency = String.format(
                Locale.ROOT, "infer %.2f ms  p50(%d) %s ms  pre %.2f ms", result.inferenceMs,
                FrameClassifier.ROLLING_WINDOW, result.rollingP50Ms?.let { p -> String.format(Locale.ROOT, "%.2f", p) } ?: "-",
                result.preprocessMs
            )
            val top5 = result.top5.joinToString("\n") { p -> String.format(Locale.ROOT, "%5.1f%%  %s", 100 * p.probability, p.label) }
            runOnUiThread {
                latencyText.text = latency
                top5Text.text = top5
            }
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        worker.execute { classifier?.close() }
        worker.shutdown()
    }

    companion object {
        private const val TAG = "edgelight"
    }
}
