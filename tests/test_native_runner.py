"""edgelight-bench, the native .pte runner (edgelight/ops/kernels/runner/): plan mode against both schemas, bad
plans and artifacts, and agreement with the Python harness on the host. Its aarch64 build runs in test_arm64.py."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from edgelight.bench.records import validate_plan, validate_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runner():
    from edgelight.ops.kernels import build_bench_runner

    return build_bench_runner()


@pytest.fixture(scope="module")
def plan_folder(tmp_path_factory, exported):
    """A plan over a real int8 program with its digits inputs and labels, a truncated copy, a .tflite and a missing file."""
    from edgelight.bench import inputs

    folder = tmp_path_factory.mktemp("plan")
    result = exported("shiftresnet-20-e3", "executorch", "w8a8")
    shutil.copy(result.artifact, folder / "good.pte")
    (folder / "cut.pte").write_bytes(result.artifact.read_bytes()[: result.bytes // 3])
    shutil.copy(exported("shiftresnet-20-e3", "tflite", "w8a8").artifact, folder / "other.tflite")
    meta = inputs.artifact_meta(result.artifact)
    data = inputs.eval_set(meta["data"], meta)
    data.x.astype(np.float32).tofile(folder / "x.f32")
    data.y.astype(np.int32).tofile(folder / "y.i32")
    base = {"model": "shiftresnet-20-e3", "runtime": "executorch", "precision": "w8a8", "input_shape": [1, 3, 32, 32], "params": 95642, "macs": None}
    full = {"inputs": {"file": "x.f32", "count": len(data.x), "samples": len(data.x)}, "labels": "y.i32", "dataset": data.name, "logits": "good.logits"}
    plan = {"schema_version": 2, "runs": 5, "warmup": 1, "threads": 1, "artifacts": [
        {**base, "file": "good.pte", **full}, {**base, "file": "cut.pte"}, {**base, "file": "other.tflite", "runtime": "tflite"}, {**base, "file": "gone.pte"}, {**base, "file": "good.pte"},
    ]}
    validate_plan(plan)  # the Python side's schema accepts what the runner reads
    (folder / "plan.json").write_text(json.dumps(plan))
    return folder, data, result


def test_plan_mode_writes_a_schema_record_per_artifact(runner, plan_folder):
    folder, data, result = plan_folder
    proc = subprocess.run([str(runner), "--plan", str(folder / "plan.json")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1  # one artifact failed; the others were measured
    records = validate_results(json.loads((folder / "bench_results.json").read_text()))
    assert [r["status"] for r in records] == ["ok", "error", "not_runnable", "error", "ok"]
    good, cut, other, gone, bare = records
    assert good["accuracy"] == {"dataset": data.name, "top1": pytest.approx(result.verification["accuracy"]), "samples": len(data.x)}
    assert good["latency_ms"]["runs"] == 5 and good["latency_ms"]["min"] <= good["latency_ms"]["p50"] <= good["latency_ms"]["max"]
    assert good["memory"]["planned_arena_bytes"] > 0 and good["memory"]["peak_rss_bytes"] > 0 and good["artifact"]["bytes"] == result.bytes
    assert good["device"]["cpu"] and good["device"]["os"].startswith("Linux") and good["versions"]["edgelight-bench"] == "1"
    logits = np.fromfile(folder / "good.logits", np.float32).reshape(len(data.x), -1)
    assert int((logits.argmax(1) == data.y).sum()) == round(good["accuracy"]["top1"] * len(data.x))
    assert "InvalidProgram" in cut["error"] and "does not exist" in gone["error"] and "ExecuTorch programs" in other["error"]
    assert bare["accuracy"] is None and any("random inputs" in n for n in bare["notes"])
    assert "cut.pte" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: "{not json", "bad plan"),
    (lambda p: {**p, "extra": 1}, "unknown field 'extra'"),
    (lambda p: {**p, "schema_version": 1}, "plan.schema_version: must be 2"),
    (lambda p: {**p, "runs": 1}, "plan.runs: required, an integer >= 2"),
    (lambda p: {**p, "results": "../escape.json"}, "plain file name"),
    (lambda p: {**p, "artifacts": [{**p["artifacts"][0], "input_shape": [1, 3, 32]}]}, "input_shape"),
    (lambda p: {**p, "artifacts": [{**p["artifacts"][0], "inputs": {"file": "x.f32", "count": 1, "samples": 2}}]}, "more than count x N"),
])
def test_a_bad_plan_is_one_line_and_exit_2(runner, plan_folder, tmp_path, edit, message):
    folder, _, _ = plan_folder
    plan = edit(json.loads((folder / "plan.json").read_text()))
    path = tmp_path / "plan.json"
    path.write_text(plan if isinstance(plan, str) else json.dumps(plan))
    proc = subprocess.run([str(runner), "--plan", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "bench_results.json").exists()


def test_job_mode_refuses_a_bad_command_line(runner):
    for argv in ([], ["--model", "m.pte"], ["--model", "m.pte", "--inputs", "x", "--shape", "1,a,3,3", "--result", "r"], ["--runs"]):
        proc = subprocess.run([str(runner), *argv], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.startswith("edgelight-bench: ")


def test_native_and_python_runners_agree_on_the_host(exported):
    """Every built-in checkpoint's ExecuTorch programs: the same top-1 exactly, latency within a generous bound."""
    from edgelight.bench.harness import run_bench
    from edgelight.checkpoint import PRETRAINED_DIR

    models = sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "model.safetensors").is_file())
    artifacts = [exported(m, "executorch", precision).artifact for m in models for precision in ("fp32", "w8a8")]
    python = run_bench(artifacts, threads=1, warmup=2, runs=10, progress=False)
    native = run_bench(artifacts, threads=1, warmup=2, runs=10, progress=False, runner="native")
    for p, n in zip(python, native, strict=True):
        assert (n["status"], n["model"], n["precision"]) == ("ok", p["model"], p["precision"]), n["error"]
        assert n["accuracy"] == p["accuracy"], (n["model"], n["precision"])
        assert n["artifact"] == p["artifact"] and n["device"]["kind"] == "host"
        assert 0.33 < n["latency_ms"]["p50"] / p["latency_ms"]["p50"] < 3.0  # one process each, no interleaving: a loose bound
