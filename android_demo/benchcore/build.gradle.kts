// Plain Kotlin/JVM: plan parsing, latency statistics, result records, preprocessing. No Android imports,
// so it also compiles with Debian's kotlinc and runs its JUnit tests on a plain JVM (tests/test_apps.py).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    testImplementation(libs.junit)
}
