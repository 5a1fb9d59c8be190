"""The `edgelight` command as a user runs it (a real subprocess): output, exit codes, one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgelight.bench.records import read_results


def run(*args: str, cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "edgelight", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_version_and_help():
    from edgelight import __version__

    assert run("--version").stdout.strip() == f"edgelight {__version__}"
    helped = run("--help")
    assert helped.returncode == 0
    for command in ("quickstart", "models", "train", "eval", "export", "targets", "bench", "bundle"):
        assert command in helped.stdout


def test_models_lists_names_params_and_macs():
    proc = run("models", "shiftresnet-20-*")
    assert proc.returncode == 0, proc.stderr
    row = next(ln for ln in proc.stdout.splitlines() if "shiftresnet-20-e3 " in ln)
    assert "95,642" in row and "16.43 M" in row and "3x32x32" in row
    assert "0.99" in row  # the built-in digits checkpoint's accuracy


def test_models_and_targets_print_full_names_at_any_width_and_as_json():
    from typer.testing import CliRunner

    from edgelight.cli import app
    from edgelight.models import list_models

    cli = CliRunner()
    narrow = cli.invoke(app, ["models", "mobilenetv2-cifar-*", "--no-macs"], env={"COLUMNS": "40"})  # piped, as into `| cat`
    assert narrow.exit_code == 0 and "…" not in narrow.output, narrow.output
    for name in list_models("mobilenetv2-cifar-*"):
        assert f" {name} " in narrow.output
    listed = json.loads(cli.invoke(app, ["models", "shiftresnet-20-e3", "--json"]).output)
    assert listed == [{"name": "shiftresnet-20-e3", "family": "shiftresnet", "params": 95642, "macs": listed[0]["macs"], "input_shape": [3, 32, 32], "builtin_accuracy": listed[0]["builtin_accuracy"]}]
    assert listed[0]["macs"] > 16e6 and listed[0]["builtin_accuracy"] > 0.98
    targets = json.loads(cli.invoke(app, ["targets", "--json"]).output)
    assert [t["target"] for t in targets] == ["executorch", "tflite", "coreml", "onnx"]
    assert all(t["default_precision"] in t["precisions"] and isinstance(t["runs_here"], bool) for t in targets)
    table = cli.invoke(app, ["targets"], env={"COLUMNS": "60"}).output
    assert "executorch" in table and "shift=depthwise|slices" in table and "…" not in table


def test_models_with_no_match_is_a_usage_error():
    proc = run("models", "vgg-*")
    assert proc.returncode == 2 and "no model matches 'vgg-*'" in one_error_line(proc)


def test_targets_lists_every_target_and_what_runs_here():
    proc = run("targets")
    assert proc.returncode == 0, proc.stderr
    for name, suffix in (("executorch", ".pte"), ("tflite", ".tflite"), ("coreml", ".mlpackage"), ("onnx", ".onnx")):
        assert name in proc.stdout and suffix in proc.stdout
    assert proc.stderr.strip() == ""


def test_train_an_unknown_model_suggests_close_names():
    proc = run("train", "lrunet-14-1")
    assert proc.returncode == 2
    assert "Did you mean: lrunet-14-1x" in one_error_line(proc)


@pytest.mark.parametrize(
    "args, message",
    [(["train", "resnet-20", "--epochs", "0"], "Invalid value for '--epochs'"), (["export", "resnet-20", "--batch", "abc"], "Invalid value for '--batch'"),
     (["bench"], "Missing argument"), (["exprot"], "Did you mean 'export'?"), (["export", "resnet-20", "--bogus"], "No such option: --bogus")],
)
def test_command_line_mistakes_are_one_line(args, message):
    """The parser's own errors follow the same rule: one `error:` line, exit 2, no usage panel."""
    proc = run(*args)
    assert proc.returncode == 2 and message in one_error_line(proc) and proc.stdout == ""


@pytest.mark.parametrize("args, message", [(["eval", "./nowhere"], "is not a checkpoint directory"), (["train", "resnet-20", "--dataset", "cifar10"], "needs --data-dir")])
def test_bad_paths_are_one_line(args, message, tmp_path):
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2 and message in one_error_line(proc)


def test_eval_of_a_corrupt_checkpoint_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model": "resnet-20", "preprocessing": {"input_size": [3, 32, 32], "mean": [0] * 3, "std": [1] * 3}}))
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    proc = run("eval", str(tmp_path))
    assert proc.returncode == 2 and "is not a readable safetensors file" in one_error_line(proc)


def test_eval_of_a_built_in_checkpoint_reproduces_its_accuracy():
    proc = run("eval", "shiftresnet-20-e3")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    from edgelight.checkpoint import builtin_checkpoint_dir

    recorded = json.loads((builtin_checkpoint_dir("shiftresnet-20-e3") / "metrics.json").read_text())["test_accuracy"]
    assert result["source"] == "builtin" and result["samples"] == 360 and result["test_accuracy"] == pytest.approx(recorded, abs=1e-6)


@pytest.mark.slow
def test_train_then_eval_then_export_a_fresh_checkpoint(tmp_path):
    ckpt = tmp_path / "runs" / "resnet-20"  # the default --out
    trained = run("train", "resnet-20", "--epochs", "1", "--size", "16", "--no-progress", cwd=tmp_path)  # 16x16: the flow, not the accuracy
    assert trained.returncode == 0, trained.stderr
    assert "checkpoint written to runs/resnet-20" in trained.stdout
    metrics = json.loads(trained.stdout.splitlines()[0])
    assert metrics["epochs"] == 1 and 0 <= metrics["test_accuracy"] <= 1 and metrics["params"] == 272_474
    evaluated = json.loads(run("eval", str(ckpt)).stdout)
    assert evaluated["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    exported = run("export", str(ckpt), "--target", "tflite", "--out", str(tmp_path / "m.tflite"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "m.tflite.json").read_text())["weights"] == "checkpoint"


@pytest.mark.slow
@pytest.mark.long
def test_quickstart_exports_verifies_benchmarks_and_reports(tmp_path):
    """The README's main job, on one built-in model and one cell per target, exports in two worker processes."""
    from edgelight.quickstart import quickstart

    lines = []
    result = quickstart(tmp_path / "qs", models=["shiftresnet-20-e3"], cells=(("executorch", "fp32"), ("tflite", "w8a8"), ("coreml", "fp16"), ("executorch", "fp16")),
                        runs=3, warmup=1, progress=False, say=lines.append, jobs=2)
    # a cell that fails in a worker is reported and the others go on
    assert result.failures == ["shiftresnet-20-e3 executorch fp16: target executorch supports precisions fp32, w8a8, not 'fp16'"]
    assert [r["runtime"] for r in result.records] == ["eager", "executorch", "tflite", "coreml"]
    statuses = {r["runtime"]: r["status"] for r in result.records}
    assert statuses["executorch"] == statuses["tflite"] == statuses["eager"] == "ok"
    assert statuses["coreml"] == ("ok" if sys.platform == "darwin" else "not_runnable")
    assert len(read_results(tmp_path / "qs" / "results.json")) == 4
    for name in ("report.md", "report.html", "pareto.png"):
        assert (tmp_path / "qs" / "report" / name).is_file()
    assert any("export shiftresnet-20-e3 -> tflite w8a8: " in ln and "top-1 agreement" in ln for ln in lines)
    assert sorted(p.name for p in (tmp_path / "qs" / "artifacts").iterdir()) == [  # the workers left no temporary files
        "shiftresnet-20-e3_coreml_fp16.mlpackage", "shiftresnet-20-e3_coreml_fp16.mlpackage.json", "shiftresnet-20-e3_executorch_fp32.pte",
        "shiftresnet-20-e3_executorch_fp32.pte.json", "shiftresnet-20-e3_tflite_w8a8.tflite", "shiftresnet-20-e3_tflite_w8a8.tflite.json"]


@pytest.mark.slow
def test_training_under_torchrun_is_distributed_data_parallel(tmp_path):
    """Two CPU ranks (gloo): each trains on its shard, rank 0 alone writes the checkpoint and reports."""
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "edgelight", "train", "shiftresnet-20-e1",
                           "--epochs", "2", "--out", str(tmp_path / "ck"), "--no-progress"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(reports) == 1 and reports[0]["epochs"] == 2 and reports[0]["best_epoch"] >= 1
    metrics = json.loads((tmp_path / "ck" / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
