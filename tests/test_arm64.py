"""The ARM64 lane: the aarch64 builds of ExecuTorch and LiteRT and edgelight's cross-compiled kernels under qemu-user.

CI's slice (.ci/run builds the environment first, cached between runs): the kernel tests on aarch64, one int8
artifact per runtime benchmarked and verified against x86 and PyTorch, and the lane's error cases. The full
matrix is bench/arm64.py. Elsewhere the tests that need the environment skip until `edgelight device setup arm64`.
"""

import json
import os
import shutil
import subprocess

import pytest

from edgelight.arm64 import env
from edgelight.errors import UsageError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def arm():
    if env.missing_tools() or any(v != "ready" for v in env.Arm64Env(env.home()).state().values()):
        if os.environ.get("EDGELIGHT_REQUIRE_ARM64"):
            pytest.fail(".ci/run builds the ARM64 environment before the tests (.ci/run); it is not ready: " + json.dumps(env.Arm64Env(env.home()).state()))
        pytest.skip("the ARM64 environment is not set up here (edgelight device setup arm64)")
    return env.require()


@pytest.fixture(scope="module")
def int8_artifacts(exported):
    return {rt: exported("shiftresnet-20-e3", rt, "w8a8").artifact for rt in ("executorch", "tflite")}


def test_setup_is_idempotent(arm):
    lines = []
    env.setup(say=lines.append)
    assert lines == [line for line in lines if ": ready (" in line] and len(lines) == len(env.STEPS)


def test_kernel_tests_pass_on_aarch64(arm):
    argv, environ = arm.binary("edgelight_kernels_test", [], "cortex-a76")
    proc = subprocess.run(argv, capture_output=True, text=True, env=environ, timeout=300)
    assert proc.returncode == 0 and "OK: 0 failures" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert subprocess.run(["file", str(arm.native / "edgelight_kernels_test")], capture_output=True, text=True).stdout.count("ARM aarch64") == 1


def test_int8_artifacts_bench_on_arm64_as_emulated_records(arm, int8_artifacts, tmp_path):
    from edgelight.bench.harness import run_bench
    from edgelight.bench.records import read_results
    from edgelight.bench.report import markdown

    out = tmp_path / "arm.json"
    records = run_bench(list(int8_artifacts.values()), device="arm64-qemu:cortex-a76", threads=1, warmup=1, runs=3, json_out=out, progress=False)
    assert read_results(out) == records and [r["runtime"] for r in records] == ["executorch", "tflite"]
    for r in records:
        assert r["status"] == "ok", r["error"]
        assert r["device"]["kind"] == "arm64-qemu" and r["device"]["emulated"] is True and "cortex-a76" in r["device"]["cpu"]
        assert r["accuracy"]["top1"] > 0.97 and r["accuracy"]["samples"] == 360 and not r["nan_outputs"]
        assert any("not phone time" in n for n in r["notes"])
    assert "emulated: not phone time" in markdown(records)


def test_the_aarch64_native_runner_answers_a_plan(arm, int8_artifacts):
    """edgelight-bench's plan mode, cross-compiled, under qemu: what a phone would run with adb shell."""
    from edgelight.bench.harness import run_bench

    python, native = (run_bench([int8_artifacts["executorch"]], device="arm64-qemu", threads=1, warmup=1, runs=3, progress=False, runner=runner)[0] for runner in ("python", "native"))
    assert native["status"] == "ok", native["error"]
    assert native["accuracy"] == python["accuracy"] and native["device"]["emulated"] and native["versions"]["edgelight-bench"] == "1"
    assert native["memory"]["planned_arena_bytes"] > 0 and any("not phone time" in n for n in native["notes"])
    ops = {r["op"].split(" #")[0] for r in native["op_profile"]}  # from the ARM build's ETDump: XNNPACK's own ops inside the delegate call
    assert {"DELEGATE_CALL", "Method::execute"} <= ops and any(op.startswith("Convolution (NHWC, QC8)") for op in ops)


def test_verify_on_arm64_agrees_with_x86_and_pytorch(arm, int8_artifacts):
    from edgelight.arm64.verify import verify_on_device

    reports = verify_on_device(list(int8_artifacts.values()), device="arm64-qemu:cortex-a76")
    for r in reports:
        assert r["status"] == "passed", r["problems"]
        assert r["vs_x86"]["top1_agreement"] >= 0.99 and r["accuracy"]["arm"] >= r["accuracy"]["reference"] - 0.01
        assert r["reference"].startswith("PyTorch fp32: built-in checkpoint")
    et = next(r for r in reports if r["runtime"] == "executorch")
    assert et["vs_x86"]["bit_exact"], "ExecuTorch's int8 XNNPACK kernels on cortex-a76 matched x86 bit for bit when this test was written"


@pytest.mark.parametrize("weights, digest, has_reference", [
    ("builtin", None, True),  # a sidecar from before weights_sha256, exported by model name
    ("checkpoint", "builtin", True),
    ("checkpoint", "other", False),  # a fine-tuned copy in a folder named like the model
    ("checkpoint", None, False),  # an older sidecar from some folder: which weights is not known
    ("random", None, False),
    ("user", None, False),
])
def test_the_pytorch_reference_is_the_built_in_checkpoint_when_the_sidecar_says_so(weights, digest, has_reference):
    """Without --checkpoint, the built-in checkpoint is the PyTorch reference only for the weights it holds
    (the sidecar's weights_sha256); a --checkpoint with other weights than the sidecar's is refused. No ARM
    environment involved."""
    import numpy as np

    from edgelight.arm64.verify import _reference
    from edgelight.checkpoint import resolve, weights_digest
    from edgelight.errors import UsageError
    from edgelight.evaluation import EvalSet

    data = EvalSet("zeros", np.zeros((4, 3, 32, 32), np.float32), None, [])
    meta = {"model": "shiftresnet-20-e3", "weights": weights}
    if digest:
        meta["weights_sha256"] = weights_digest(resolve("shiftresnet-20-e3").model) if digest == "builtin" else "0" * 64
    reference, source = _reference(meta, None, data)
    assert (reference is not None) == has_reference, source
    assert reference is None or reference.logits.shape == (4, 10)
    assert source.startswith("PyTorch fp32: built-in checkpoint shiftresnet-20-e3" if has_reference else "no PyTorch reference")
    if digest == "other":
        with pytest.raises(UsageError, match="other weights than the artifact"):
            _reference(meta, "shiftresnet-20-e3", data)


def test_a_looped_reuse_program_runs_on_the_aarch64_runners(arm, tmp_path):
    """ExecuTorch fp32's loop over one delegate (LruNet's reuse, reuse_loop.py) on both aarch64 runners: the
    jump-loop instructions and portable select/copy ops the emitter writes, around the XNNPACK body: the
    same program the host runs (export verified it against PyTorch). A 2-reuse net at 16x16, small enough
    for qemu in seconds."""
    from test_shared_weights import images, two_reuses  # tests/ is on sys.path (pytest's rootdir-relative import)

    import edgelight
    from edgelight.bench.harness import run_bench

    result = edgelight.export(two_reuses(awkward=True), images(1), target="executorch", precision="fp32", out=tmp_path / "two.pte")
    assert any("as loops" in n for n in result.notes), result.notes
    records = {runner: run_bench([result.artifact], device="arm64-qemu:cortex-a76", runner=runner, threads=1, warmup=1, runs=2, progress=False)[0] for runner in ("python", "native")}
    for runner, record in records.items():
        assert record["status"] == "ok" and not record["nan_outputs"], (runner, record["error"])


@pytest.mark.parametrize("ops", ["native", "delegate"])
def test_native_kernel_programs_run_on_the_aarch64_kernels(arm, exported, ops):
    """ops=native / ops=delegate: the shift runs on edgelight's C++ kernels (custom op or EdgelightBackend),
    here the aarch64 build of the library."""
    from edgelight.arm64.verify import verify_on_device

    artifact = exported("shiftresnet-20-e3", "executorch", "w8a8", ops=ops).artifact
    (report,) = verify_on_device([artifact], device="arm64-qemu:cortex-a53")  # a little core: no dot product
    assert report["status"] == "passed", report["problems"]
    assert report["vs_x86"]["top1_agreement"] >= 0.99 and report["accuracy"]["arm"] >= report["accuracy"]["reference"] - 0.01


def test_litert_custom_op_programs_run_on_the_aarch64_kernels(arm, exported):
    """tflite ops=custom: the int8 shift runs as edgelight's LiteRT custom op, the aarch64 build of
    libedgelight_litert.so (cross-compiled by setup) on the aarch64 libLiteRt.so, NEON byte blends."""
    from edgelight.arm64.verify import verify_on_device

    artifact = exported("shiftresnet-20-e3", "tflite", "w8a8", ops="custom").artifact
    (report,) = verify_on_device([artifact], device="arm64-qemu:cortex-a76")
    assert report["status"] == "passed", report["problems"]
    assert report["vs_x86"]["top1_agreement"] >= 0.99 and report["accuracy"]["arm"] >= report["accuracy"]["reference"] - 0.01


def test_a_crashing_or_broken_artifact_is_one_failed_record(arm, int8_artifacts, tmp_path):
    from edgelight.bench.harness import run_bench

    broken = tmp_path / "broken.pte"
    broken.write_bytes(int8_artifacts["executorch"].read_bytes()[:5000])
    shutil.copy(int8_artifacts["executorch"].with_name(int8_artifacts["executorch"].name + ".json"), tmp_path / "broken.pte.json")
    records = run_bench([broken, int8_artifacts["tflite"]], device="arm64-qemu", warmup=0, runs=2, progress=False)
    assert records[0]["status"] == "error" and records[0]["error"] and records[1]["status"] == "ok"


def test_qemu_dying_mid_run_fails_that_record_only(arm, int8_artifacts, tmp_path):
    """SIGKILL the emulator while it runs the first artifact: that record fails, the next one is measured."""
    import signal
    import threading
    import time
    from pathlib import Path

    from edgelight.bench.harness import run_bench

    victim = str(int8_artifacts["executorch"].resolve())
    killed = []

    def kill_when_running():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    cmd = (proc / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if cmd and cmd[0].endswith(b"qemu-aarch64-static") and victim.encode() in cmd:
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(proc.name)
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_when_running)
    watcher.start()
    out = tmp_path / "r.json"
    records = run_bench([int8_artifacts["executorch"], int8_artifacts["tflite"]], device="arm64-qemu", warmup=0, runs=200, json_out=out, progress=False)
    watcher.join()
    assert killed
    assert records[0]["status"] == "error" and "SIGKILL" in records[0]["error"], records[0]["error"]
    assert records[1]["status"] == "ok" and len(json.loads(out.read_text())["records"]) == 2


def test_a_wheel_missing_for_aarch64_is_named(tmp_path):
    with pytest.raises(env.Arm64EnvError, match=r"the aarch64 wheel of executorch 0\.0\.1.*No matching distribution"):
        env._build_wheels(tmp_path / "w", tmp_path / "log", {"executorch": "0.0.1", "numpy": "2.0.0"})


def test_lane_refuses_what_it_cannot_run(arm, exported, tmp_path):
    from edgelight.arm64.verify import verify_on_device
    from edgelight.bench.harness import run_bench

    with pytest.raises(UsageError, match="does not emulate 'pentium'"):
        run_bench([exported("shiftresnet-20-e3", "tflite", "w8a8").artifact], device="arm64-qemu:pentium", progress=False)
    onnx = exported("shiftresnet-20-e3", "onnx", "fp32").artifact
    with pytest.raises(UsageError, match="verifies executorch and tflite"):
        verify_on_device([onnx])
    record = run_bench([onnx], device="arm64-qemu", warmup=0, runs=2, progress=False)[0]
    assert record["status"] == "not_runnable" and "ExecuTorch and LiteRT" in record["error"]
    bare = tmp_path / "bare.tflite"
    shutil.copy(exported("shiftresnet-20-e3", "tflite", "w8a8").artifact, bare)
    with pytest.raises(UsageError, match="needs the artifact's sidecar"):
        verify_on_device([bare])


def test_missing_or_half_built_environment_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELIGHT_ARM64_DIR", str(tmp_path))
    monkeypatch.setattr(env.shutil, "which", lambda tool: None if tool == "proot" else "/usr/bin/" + tool)
    with pytest.raises(UsageError, match="apt-get install -y proot"):
        env.require()
    monkeypatch.setattr(env.shutil, "which", lambda tool: "/usr/bin/" + tool)
    (tmp_path / "native.partial-x1").mkdir()
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs.json").write_text(json.dumps({"built_from": {"suite": "buster"}}))
    state = env.Arm64Env(tmp_path).state()
    assert state == {"rootfs": "stale", "wheels": "missing", "native": "interrupted"}
    with pytest.raises(UsageError, match=r"rootfs stale, wheels missing, native interrupted\); run: edgelight device setup arm64"):
        env.require()


def test_an_interrupted_step_leaves_nothing_half_built(tmp_path):
    (tmp_path / "wheels.partial-old").mkdir()
    with pytest.raises(KeyboardInterrupt), env._step_folder(tmp_path, "wheels") as tmp:
        (tmp / "half").write_text("x")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []  # neither the old partial folder nor this one, and no wheels/
    with env._step_folder(tmp_path, "wheels") as tmp:
        (tmp / "whole").write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["wheels"] and (tmp_path / "wheels" / "whole").is_file()
