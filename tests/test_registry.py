"""The runtime registry is the one list of runtimes: every table, schema enum and app constant agrees with it.

The JSON schemas and the apps' Kotlin/Swift constants are files other programs read, so they cannot import
the registry; these tests hold them to it instead.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgelight.errors import StepError, UsageError, converter_errors
from edgelight.targets import PRECISIONS, REGISTRY, export_targets, get_runtime, get_target, runtimes, suffixes

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "edgelight" / "bench"
KOTLIN = ROOT / "android_demo" / "benchcore" / "src" / "main" / "kotlin" / "dev" / "edgelight" / "benchcore"
SWIFT = ROOT / "ios_demo" / "BenchCore" / "Sources" / "BenchCore"


def _enum(schema: str, *path: str) -> list:
    node = json.loads((SCHEMAS / schema).read_text())
    for key in path:
        node = node[key]
    return node["enum"]


def _list(source: Path, name: str) -> list[str]:
    match = re.search(rf"{name}\s*=\s*(?:listOf\(|\[)([^)\]]*)[)\]]", source.read_text())
    assert match, f"{name} not found in {source}"
    return re.findall(r'"([^"]+)"', match.group(1))


def test_every_folder_is_registered_and_every_record_names_its_folder():
    folders = {p.name for p in (ROOT / "edgelight" / "targets").iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(REGISTRY)
    for r in runtimes():
        assert r.name == r.name.lower() and r.suffixes and r.color.startswith("#") and r.packages
        assert set(r.benched) <= set(r.precisions) <= set(PRECISIONS)
        assert r.exporter is None or r.default_precision in r.precisions


def test_the_schemas_enums_are_the_registry():
    precisions = list(PRECISIONS)
    assert _enum("bench_record.schema.json", "properties", "runtime") == list(REGISTRY)
    assert _enum("bench_record.schema.json", "properties", "precision") == [*precisions, "unknown"]  # unknown: an artifact without a sidecar
    plan_runtimes = _enum("bench_plan.schema.json", "properties", "artifacts", "items", "properties", "runtime")
    assert plan_runtimes == [r.name for r in export_targets()]
    assert _enum("bench_plan.schema.json", "properties", "artifacts", "items", "properties", "precision") == precisions


def test_the_sidecar_schema_knows_every_precision_and_version_1s_int8():
    from edgelight.artifacts import SCHEMA, SIDECAR_VERSION

    schema = json.loads(SCHEMA.read_text())
    assert schema["properties"]["precision"]["enum"] == [*PRECISIONS, "int8"]
    assert SIDECAR_VERSION in schema["properties"]["sidecar_version"]["enum"]


def test_the_apps_constants_are_the_registry():
    assert _list(KOTLIN / "BenchRecord.kt", "RUNTIMES") == list(REGISTRY)
    assert _list(KOTLIN / "BenchPlan.kt", "PLAN_RUNTIMES") == [r.name for r in export_targets()]
    assert _list(KOTLIN / "BenchPlan.kt", "PRECISIONS") == list(PRECISIONS)
    assert _list(SWIFT / "BenchPlan.swift", "precisions") == list(PRECISIONS)


def test_derived_tables_follow_the_records():
    from edgelight.apps.bundle import app_suffixes
    from edgelight.bench.harness import phone_runtimes
    from edgelight.bench.records import versions
    from edgelight.quickstart import default_cells

    assert suffixes() == {s: r.name for r in runtimes() for s in r.suffixes}
    assert default_cells() == tuple((r.name, p) for r in export_targets() for p in r.benched)
    assert set(phone_runtimes("android")) == {r.name for r in runtimes() if "android" in r.apps}
    assert set(app_suffixes("ios").values()) == {r.name for r in export_targets() if "ios" in r.apps + r.listed_by}
    installed = versions()
    assert "edgelight" in installed and "torch" in installed


def test_importing_the_registry_loads_no_runtime():
    code = "import sys, edgelight.targets as t; t.runtimes(); print(sorted(m for m in ('torch', 'executorch', 'coremltools', 'ai_edge_litert', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "name, precision, options, message",
    [
        ("eager", None, {}, "reference runtime, not an export target"),
        ("onnx2", None, {}, "unknown target 'onnx2'"),
        ("executorch", "fp16", {}, "supports precisions fp32, w8a8, not 'fp16'"),
        ("coreml", "int8", {}, "ambiguous here: w8 or w8a8"),
        ("tflite", "fp32", {"io": "int8"}, "needs precision w8a8"),
    ],
)
def test_resolve_checks_names_options_and_combinations_before_any_work(name, precision, options, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        get_target(name).resolve(precision, options)


def test_int8_is_an_alias_where_it_is_unambiguous():
    assert get_target("executorch").resolve("int8", {})[0] == "w8a8"
    assert get_target("tflite").resolve("int8", {})[0] == "w8a8"
    assert get_runtime("coreml").resolve("w8", {})[0] == "w8"


def test_a_converter_exception_becomes_one_line_and_ours_pass_through():
    with pytest.raises(StepError) as err:
        with converter_errors("tflite lowering"):
            raise RuntimeError("MLIR failed\n" + "  %0 = tfl.conv ...\n" * 50)
    assert str(err.value) == "tflite lowering failed: RuntimeError: MLIR failed" and isinstance(err.value.__cause__, RuntimeError)
    with pytest.raises(UsageError, match="bad input"):
        with converter_errors("tflite lowering"):
            raise UsageError("bad input")
