import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

// true: link app/libs/executorch-edgelight.aar (ExecuTorch rebuilt with the edgelight kernels, see
// scripts/build_executorch_aar.sh); false: the stock Maven AAR, which has no edgelight kernels.
val customExecutorchAar = providers.gradleProperty("edgelight.customExecutorchAar").map { it.toBoolean() }.getOrElse(false)

android {
    namespace = "dev.edgelight.demo"
    compileSdk = 36

    defaultConfig {
        applicationId = "dev.edgelight.demo"
        minSdk = 26
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
        // Written into every bench record's `versions`.
        buildConfigField("String", "EXECUTORCH_VERSION", "\"${libs.versions.executorch.get()}\"")
        buildConfigField("String", "LITERT_VERSION", "\"${libs.versions.litert.get()}\"")
        buildConfigField("String", "ONNXRUNTIME_VERSION", "\"${libs.versions.onnxruntime.get()}\"")
        buildConfigField("boolean", "EDGELIGHT_KERNELS", customExecutorchAar.toString())
    }

    buildFeatures { buildConfig = true }

    buildTypes {
        // Benchmark numbers come from the release build; it stays debuggable so `adb shell run-as` can read
        // the results file (see README). Debuggable only changes ART's JIT of Kotlin code, not native kernels.
        release {
            isMinifyEnabled = false
            isDebuggable = true
            signingConfig = signingConfigs.getByName("debug")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    // Models are memory-mapped by the runtimes: keep them uncompressed in the APK.
    androidResources { noCompress += listOf("pte", "tflite", "onnx") }
    packaging { jniLibs { useLegacyPackaging = true } }
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    implementation(project(":benchcore"))
    if (customExecutorchAar) {
        implementation(files("libs/executorch-edgelight.aar"))
        implementation(libs.fbjni)
        implementation(libs.soloader)
    } else {
        implementation(libs.executorch.android)
    }
    implementation(libs.litert)
    implementation(libs.onnxruntime.android)
    implementation(libs.camera.core)
    implementation(libs.camera.camera2)
    implementation(libs.camera.lifecycle)
    implementation(libs.camera.view)
    implementation(libs.activity.ktx)
    implementation(libs.lifecycle.runtime.ktx)
}
