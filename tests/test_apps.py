"""The demo apps' plain logic and their JSON contract with `edgelight bench`, plus `edgelight bundle`.

What runs here (Linux, no Android SDK, no Xcode):
- android_demo/benchcore (plain Kotlin) is compiled with Debian's kotlinc and its JUnit 4 tests are run;
- the compiled benchcore runs the shared sample plan and its results file is validated against
  edgelight/bench/bench_record.schema.json; its latency statistics are checked against numpy;
- the shared sample files in tests/fixtures/apps/ are validated against both schemas;
- the iOS BenchCore Swift package is tested with `swift test` only where a Swift toolchain exists
  (Debian has none); here its record keys are checked against the schema from the source text.
A missing kotlinc/JUnit fails loudly: CI must install Debian's `kotlin junit4 libhamcrest-java`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edgelight.apps import BundleError, bundle

ROOT = Path(__file__).resolve().parents[1]
BENCHCORE = ROOT / "android_demo" / "benchcore"
SWIFT_BENCHCORE = ROOT / "ios_demo" / "BenchCore"
FIXTURES = ROOT / "tests" / "fixtures" / "apps"
RECORD_SCHEMA = json.loads((ROOT / "edgelight" / "bench" / "bench_record.schema.json").read_text())
PLAN_SCHEMA = json.loads((ROOT / "edgelight" / "bench" / "bench_plan.schema.json").read_text())
DEBIAN_JARS = Path("/usr/share/java")
APT_HINT = "install Debian's packages: apt-get install -y kotlin junit4 libhamcrest-java"


def validate_results_file(data: dict) -> list[dict]:
    assert data["schema_version"] == RECORD_SCHEMA["properties"]["schema_version"]["const"]
    assert set(data) == {"schema_version", "records"}
    validator = jsonschema.Draft202012Validator(RECORD_SCHEMA)
    for record in data["records"]:
        errors = sorted(validator.iter_errors(record), key=str)
        assert not errors, f"{record.get('model')}: {errors[0].message}"
    return data["records"]


# ---------------------------------------------------------------- shared sample files, both schemas


def test_sample_plan_follows_the_plan_schema():
    plan = json.loads((FIXTURES / "sample_plan.json").read_text())
    jsonschema.Draft202012Validator(PLAN_SCHEMA).validate(plan)
    assert {a["runtime"] for a in plan["artifacts"]} == {"executorch", "tflite", "coreml"}


def test_sample_results_follow_the_record_schema():
    records = validate_results_file(json.loads((FIXTURES / "sample_results.json").read_text()))
    assert {r["device"]["kind"] for r in records} == {"android", "ios"}
    assert {r["status"] for r in records} == {"ok", "error", "not_runnable"}
    for r in records:
        if r["status"] == "ok":
            lat = r["latency_ms"]
            assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]


def test_schema_rejects_what_the_apps_must_never_write():
    record = json.loads((FIXTURES / "sample_results.json").read_text())["records"][0]
    validator = jsonschema.Draft202012Validator(RECORD_SCHEMA)
    for broken in (
        {**record, "runtime": "tensorrt"},
        {**record, "device": {**record["device"], "kind": "phone"}},
        {**record, "latency_ms": {**record["latency_ms"], "runs": 1}},
        {**record, "unexpected": 1},
    ):
        assert not validator.is_valid(broken)


# ---------------------------------------------------------------- Android plain logic on a plain JVM


@pytest.fixture(scope="session")
def benchcore_classpath(tmp_path_factory) -> str:
    """Compile benchcore (main + tests) once with kotlinc; fail loudly when the toolchain is missing."""
    kotlinc = shutil.which("kotlinc")
    junit = DEBIAN_JARS / "junit4.jar"
    hamcrest = DEBIAN_JARS / "hamcrest-core.jar"
    stdlib = DEBIAN_JARS / "kotlin-stdlib.jar"
    missing = [str(p) for p in (junit, hamcrest, stdlib) if not p.is_file()]
    if kotlinc is None or missing:
        pytest.fail(f"no Kotlin/JUnit toolchain (kotlinc={kotlinc}, missing {missing}): {APT_HINT}")
    out = tmp_path_factory.mktemp("benchcore")
    main_out, test_out = out / "main", out / "test"
    for sources, dest, cp in (
        (BENCHCORE / "src" / "main" / "kotlin", main_out, ""),
        (BENCHCORE / "src" / "test" / "kotlin", test_out, f"{main_out}:{junit}"),
    ):
        cmd = [kotlinc, str(sources), "-d", str(dest)] + (["-cp", cp] if cp else [])
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"kotlinc failed:\n{result.stderr}"
        assert any(dest.rglob("*.class")), f"kotlinc wrote no classes for {sources}"
    return ":".join(str(p) for p in (main_out, test_out, junit, hamcrest, stdlib))


def run_cli(classpath: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", classpath, "dev.edgelight.benchcore.CliKt", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_benchcore_junit_tests_pass(benchcore_classpath):
    test_classes = sorted(
        "dev.edgelight.benchcore." + p.stem for p in (BENCHCORE / "src" / "test" / "kotlin").rglob("*Test.kt")
    )
    assert len(test_classes) >= 6
    result = subprocess.run(
        ["java", "-cp", benchcore_classpath, "org.junit.runner.JUnitCore", *test_classes], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = re.search(r"^OK \((\d+) tests\)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 30, result.stdout[-2000:]


@pytest.mark.slow
def test_jvm_runs_the_sample_plan_into_a_schema_valid_results_file(benchcore_classpath, tmp_path):
    plan = json.loads((FIXTURES / "sample_plan.json").read_text())
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    pte, tflite = tmp_path / plan["artifacts"][0]["file"], tmp_path / plan["artifacts"][1]["file"]
    pte.write_bytes(bytes(range(256)) * 8)
    tflite.write_bytes(b"TFL3" + bytes(100))
    out = tmp_path / "bench_results.json"

    result = run_cli(benchcore_classpath, "run-plan", str(tmp_path / "plan.json"), str(out))
    assert result.returncode == 0, result.stderr

    records = validate_results_file(json.loads(out.read_text()))
    assert [(r["model"], r["runtime"], r["status"]) for r in records] == [
        ("lrunet-4-1x", "executorch", "ok"),
        ("shiftresnet-20-e3", "tflite", "ok"),
        ("mobilenetv2-cifar-100", "coreml", "not_runnable"),  # like the Android app: no Core ML there
    ]
    ok = records[0]
    assert ok["latency_ms"]["runs"] == plan["runs"] and ok["latency_ms"]["warmup"] == plan["warmup"]
    assert ok["threads"] == plan["threads"] and ok["params"] == 95642
    assert ok["artifact"]["sha256"] == hashlib.sha256(pte.read_bytes()).hexdigest()
    assert ok["artifact"]["bytes"] == pte.stat().st_size
    assert ok["device"]["kind"] == "host" and ok["versions"]["engine"] == "synthetic"
    assert ok["nan_outputs"] is False
    lat = ok["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]


@pytest.mark.slow
def test_jvm_statistics_match_the_host_rules(benchcore_classpath):
    samples = np.random.default_rng(7).gamma(2.0, 0.4, size=37)
    result = run_cli(benchcore_classpath, "stats", *(repr(float(s)) for s in samples))
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    expected = {
        # the host's edgelight/bench/stats.py rules: sample std (ddof=1), numpy's linear percentiles
        "mean": samples.mean(), "std": samples.std(ddof=1), "min": samples.min(), "max": samples.max(),
        **{f"p{q}": np.percentile(samples, q) for q in (50, 90, 99)},
    }
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, rel=1e-12), key
    assert stats["runs"] == 37

    from edgelight.bench.stats import summarize  # the host side of the same figures

    host = summarize(list(samples), load_ms=0.0, first_ms=0.0, warmup=0)
    assert set(host) == set(stats)
    for key, value in host.items():
        assert stats[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.slow
def test_jvm_rejects_an_invalid_plan_with_one_line(benchcore_classpath, tmp_path):
    plan = json.loads((FIXTURES / "sample_plan.json").read_text())
    plan["runs"] = 1
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    assert not jsonschema.Draft202012Validator(PLAN_SCHEMA).is_valid(plan)
    result = run_cli(benchcore_classpath, "run-plan", str(tmp_path / "plan.json"), str(tmp_path / "out.json"))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: plan.runs: must be >= 2, got 1"
    assert not (tmp_path / "out.json").exists()


def test_the_android_plan_reader_knows_every_key_of_the_plan_schema():
    """The app rejects unknown keys, so a key the schema adds (for edgelight-bench) must be known there too."""
    source = (BENCHCORE / "src" / "main" / "kotlin" / "dev" / "edgelight" / "benchcore" / "BenchPlan.kt").read_text()
    keys = {name: set(re.findall(r'"(\w+)"', re.search(rf"{name} = setOf\((.*?)\)", source).group(1))) for name in ("PLAN_KEYS", "ARTIFACT_KEYS")}
    assert keys["PLAN_KEYS"] == set(PLAN_SCHEMA["properties"])
    assert keys["ARTIFACT_KEYS"] == set(PLAN_SCHEMA["properties"]["artifacts"]["items"]["properties"])


# ---------------------------------------------------------------- iOS plain logic


def test_swift_record_keys_cover_the_schema():
    """Without a Swift compiler, check the Swift record's JSON keys against the schema from the source."""
    source = "\n".join(p.read_text() for p in sorted((SWIFT_BENCHCORE / "Sources" / "BenchCore").glob("*.swift")))
    blocks = dict(re.findall(r"// keys: (\w+)\n(.*?)// end keys", source, re.DOTALL))
    schema_blocks = {
        "record": RECORD_SCHEMA,
        "device": RECORD_SCHEMA["properties"]["device"],
        "artifact": RECORD_SCHEMA["properties"]["artifact"],
        "latency": RECORD_SCHEMA["properties"]["latency_ms"],
    }
    assert set(blocks) == set(schema_blocks)
    for name, schema in schema_blocks.items():
        keys = set(re.findall(r'"(\w+)"', blocks[name]))
        assert set(schema.get("required", [])) <= keys, f"{name}: missing {set(schema['required']) - keys}"
        assert keys <= set(schema["properties"]), f"{name}: not in the schema {keys - set(schema['properties'])}"


def test_swift_benchcore_tests_pass_where_swift_exists():
    swift = shutil.which("swift")
    if swift is None:
        pytest.skip("no Swift toolchain on this machine (Debian ships none); run `swift test` in ios_demo/BenchCore on macOS")
    result = subprocess.run([swift, "test"], cwd=SWIFT_BENCHCORE, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# ---------------------------------------------------------------- edgelight bundle

SIDECAR = {
    "model": "lrunet-4-1x", "precision": "fp32", "input_shape": [1, 3, 32, 32],
    "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.243, 0.261],
    "labels": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "verification": {"max_abs_diff": 1.3e-7},
}


def make_app(app_dir: Path, *apps: str) -> Path:
    """An app folder as bundle recognizes it: the root file each named app's checkout has."""
    from edgelight.apps.bundle import APP_MARKERS

    app_dir.mkdir(parents=True, exist_ok=True)
    for app in apps:
        (app_dir / APP_MARKERS[app]).write_text("")
    return app_dir


def make_artifact(folder: Path, name: str, sidecar: dict | None = SIDECAR, payload: bytes = b"PTE-bytes") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".mlpackage"):
        (path / "Data" / "com.apple.CoreML").mkdir(parents=True)
        (path / "Manifest.json").write_text("{}")
        (path / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(payload)
    else:
        path.write_bytes(payload)
    if sidecar is not None:
        (folder / (name + ".json")).write_text(json.dumps(sidecar))
    return path


def test_bundle_android_copies_artifacts_sidecars_and_writes_the_manifest(tmp_path):
    app_dir = make_app(tmp_path / "android_demo", "android")
    pte = make_artifact(tmp_path / "out", "lrunet_fp32.pte")
    tflite = make_artifact(tmp_path / "out", "lrunet_int8.tflite", {**SIDECAR, "precision": "int8"}, b"TFL3")

    written = bundle([pte, tflite], "android", app_dir)

    models = app_dir / "app" / "src" / "main" / "assets" / "models"
    assert written == [models / "lrunet_fp32.pte", models / "lrunet_fp32.pte.json", models / "lrunet_int8.tflite", models / "lrunet_int8.tflite.json", models / "manifest.json"]
    assert (models / "lrunet_fp32.pte").read_bytes() == b"PTE-bytes"
    manifest = json.loads((models / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["app"] == "android"
    first, second = manifest["models"]
    assert first == {
        "file": "lrunet_fp32.pte", "model": "lrunet-4-1x", "runtime": "executorch", "precision": "fp32",
        "input_shape": [1, 3, 32, 32], "mean": SIDECAR["mean"], "std": SIDECAR["std"], "labels": SIDECAR["labels"],
        "bytes": 9, "sha256": hashlib.sha256(b"PTE-bytes").hexdigest(),
    }
    assert (second["runtime"], second["precision"]) == ("tflite", "w8a8")  # a version 1 sidecar's int8, read with today's name


def test_bundle_ios_copies_an_mlpackage_folder_and_rebundling_replaces_entries(tmp_path):
    app_dir = make_app(tmp_path / "ios_demo", "ios")
    package = make_artifact(tmp_path / "out", "mnv2.mlpackage", {**SIDECAR, "precision": "fp16"}, b"weights-v1")
    pte = make_artifact(tmp_path / "out", "lrunet.pte")
    bundle([package, pte], "ios", app_dir)

    (package / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"weights-v2")
    bundle([package], "ios", app_dir)

    models = app_dir / "EdgelightDemo" / "Models"
    assert (models / "mnv2.mlpackage" / "Data" / "com.apple.CoreML" / "model.mlmodel").read_bytes() == b"weights-v2"
    manifest = json.loads((models / "manifest.json").read_text())
    assert [(m["file"], m["runtime"]) for m in manifest["models"]] == [("lrunet.pte", "executorch"), ("mnv2.mlpackage", "coreml")]
    assert manifest["models"][1]["sha256"] is None and manifest["models"][1]["bytes"] == len(b"weights-v2") + 2


@pytest.mark.parametrize(
    ("name", "app", "sidecar", "message"),
    [
        ("m.tflite", "ios", SIDECAR, ".tflite files run on android, not ios"),
        ("m.mlpackage", "android", SIDECAR, ".mlpackage files run on ios, not android"),
        ("m.engine", "android", SIDECAR, "not an exported artifact"),
        ("m.pte", "android", None, "missing sidecar m.pte.json"),
        ("m.pte", "android", {**SIDECAR, "mean": [0.5]}, "mean must hold 3 numbers"),
        ("m.pte", "android", {**SIDECAR, "precision": "int4"}, "invalid sidecar at precision: 'int4' is not one of"),
        ("m.pte", "android", {k: v for k, v in SIDECAR.items() if k != "labels"}, "'labels' is a required property"),
        ("m.pte", "android", {**SIDECAR, "input_shape": [1, 3, 32]}, "invalid sidecar at input_shape: [1, 3, 32] is too short"),
        ("m.pte", "tvos", SIDECAR, "unknown app 'tvos'"),
        ("m.pte", "android", {**SIDECAR, "bytes": 1000}, "is 9 bytes but its sidecar says 1000"),
        ("m.pte", "android", {**SIDECAR, "bytes": 9, "sha256": "0" * 64}, "sha256 differs from its sidecar's: it changed after export"),
    ],
)
def test_bundle_errors_are_one_clear_line_and_copy_nothing(tmp_path, name, app, sidecar, message):
    app_dir = make_app(tmp_path / "app", "android", "ios")
    good = make_artifact(tmp_path / "out", "good.pte")
    bad = make_artifact(tmp_path / "out", name, sidecar)
    with pytest.raises(BundleError) as caught:
        bundle([good, bad], app, app_dir)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert [p.name for p in app_dir.rglob("*")] == [p.name for p in app_dir.iterdir()], "a failed bundle must not copy anything"


def test_bundle_reports_a_missing_artifact_and_a_missing_app_folder(tmp_path):
    with pytest.raises(BundleError, match=r"^artifact not found: .*absent\.pte$"):
        bundle([tmp_path / "absent.pte"], "android", make_app(tmp_path / "android_demo", "android"))
    with pytest.raises(BundleError, match="app folder not found"):
        bundle([make_artifact(tmp_path, "m.pte")], "android", tmp_path / "nowhere")
    with pytest.raises(BundleError, match="is not the android demo app .it has no settings.gradle.kts"):
        bundle([tmp_path / "m.pte"], "android", make_app(tmp_path / "ios_demo", "ios"))


@pytest.mark.slow
def test_the_jvm_catalog_reads_what_bundle_writes(benchcore_classpath, tmp_path):
    app_dir = make_app(tmp_path / "android_demo", "android")
    gray = {**SIDECAR, "input_shape": [1, 1, 8, 8], "mean": [0.5], "std": [0.25], "labels": [str(i) for i in range(10)]}
    bundle([make_artifact(tmp_path / "out", "a.pte"), make_artifact(tmp_path / "out", "digits.tflite", gray)], "android", app_dir)
    models = app_dir / "app" / "src" / "main" / "assets" / "models"

    result = run_cli(benchcore_classpath, "catalog", str(models))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [(e["file"], e["runtime"], e["input_shape"]) for e in listed] == [("a.pte", "executorch", [1, 3, 32, 32]), ("digits.tflite", "tflite", [1, 1, 8, 8])]
    assert listed[0]["labels"] == SIDECAR["labels"]
    assert listed[1]["std"] == pytest.approx([0.25])


def test_bundle_command_is_a_thin_typer_wrapper(tmp_path):
    import typer
    from typer.testing import CliRunner

    from edgelight.cli.bundle import bundle_command

    app = typer.Typer()
    app.command("bundle")(bundle_command)
    app.command("noop")(lambda: None)  # two commands so typer keeps the subcommand name
    runner = CliRunner()
    make_app(tmp_path / "ios_demo", "ios")
    artifact = make_artifact(tmp_path / "out", "m.mlpackage")
    ok = runner.invoke(app, ["bundle", str(artifact), "--app", "ios", "--app-dir", str(tmp_path / "ios_demo")])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().endswith("manifest.json")
    bad = runner.invoke(app, ["bundle", str(artifact), "--app", "android", "--app-dir", str(tmp_path / "ios_demo")])
    assert bad.exit_code == 2
    assert "error:" in bad.output and "is not the android demo app" in bad.output
