"""edgelight-bench, the native .pte runner (edgelight/ops/kernels/runner/): plan mode against both schemas, bad
plans and artifacts, and agreement with the Python harness on the host. Its aarch64 build runs in test_arm64.py."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgelight.bench.records import validate_plan, validate_results

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures" / "bench"


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
    """Every built-in checkpoint's ExecuTorch programs: the same top-1 exactly, latency within a generous bound.
    lrunet-14-1x in fp32 only: its w8a8 export (~100 s, its 14 unrolled reuses) is asked for by no other test, and
    lrunet-4-1x w8a8 covers LruNet's int8 program in test_executorch.py."""
    from edgelight.bench.harness import run_bench
    from edgelight.checkpoint import PRETRAINED_DIR

    models = sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "model.safetensors").is_file())
    cells = [(m, precision) for m in models for precision in ("fp32", "w8a8") if (m, precision) != ("lrunet-14-1x", "w8a8")]
    artifacts = [exported(m, "executorch", precision).artifact for m, precision in cells]
    python = run_bench(artifacts, threads=1, warmup=2, runs=10, progress=False)
    native = run_bench(artifacts, threads=1, warmup=2, runs=10, progress=False, runner="native")
    for p, n in zip(python, native, strict=True):
        assert (n["status"], n["model"], n["precision"]) == ("ok", p["model"], p["precision"]), n["error"]
        assert n["accuracy"] == p["accuracy"], (n["model"], n["precision"])
        assert n["artifact"] == p["artifact"] and n["device"]["kind"] == "host"
        assert 0.33 < n["latency_ms"]["p50"] / p["latency_ms"]["p50"] < 3.0  # one process each, no interleaving: a loose bound
        assert [r["op"] for r in n["op_profile"]] == [r["op"] for r in p["op_profile"]]  # ETDump from the runner, read by the same Inspector code


# ---------- on an Android phone over adb (recorded transcripts: no phone reaches this machine) ----------
# The device side of these transcripts is real edgelight-bench output: its aarch64 build under qemu-user
# answered the same plan (tests/fixtures/bench/README.md says how they were made).


def ndk_stand_in(folder, interpreter: str | None = None):
    """An arm64 ELF header where the NDK build of edgelight-bench would be (no NDK here). The transcript's
    phone never runs it; the harness only checks it is an arm64, non-glibc executable before pushing it."""
    import struct

    phdr = b""
    if interpreter:  # one PT_INTERP program header pointing at the loader path that follows it
        path = interpreter.encode() + b"\0"
        phdr = struct.pack("<IIQQQQQQ", 3, 4, 64 + 56, 0, 0, len(path), len(path), 1) + path
    head = bytearray(64)
    head[:8] = b"\x7fELF\x02\x01\x01\x00"
    struct.pack_into("<HHI", head, 16, 2, 183, 1)  # ET_EXEC, EM_AARCH64
    struct.pack_into("<Q", head, 32, 64 if interpreter else 0)  # e_phoff
    struct.pack_into("<HHHHHH", head, 52, 64, 56, 1 if interpreter else 0, 64, 0, 0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edgelight-bench").write_bytes(bytes(head) + phdr)
    return folder


@pytest.fixture
def phone_plan(exported, tmp_path, monkeypatch):
    """The transcripts' artifacts (two ExecuTorch programs and a .tflite the runner does not run), an NDK stand-in."""
    monkeypatch.setenv("EDGELIGHT_ANDROID_RUNNER", str(ndk_stand_in(tmp_path / "ndk")))
    return [exported("shiftresnet-20-e3", "executorch", p).artifact for p in ("fp32", "w8a8")] + [exported("shiftresnet-20-e3", "tflite", "w8a8").artifact]


def replay(name):
    from edgelight.bench.transport import AdbTransport, RecordedAdb

    player = RecordedAdb(FIXTURES / name)
    return AdbTransport(executor=player, sleep=lambda s: None), player


def phone_bench(artifacts, transport, tmp_path):
    from edgelight.bench.harness import run_bench

    return run_bench(artifacts, device="android", runner="native", threads=2, warmup=2, runs=10, json_out=tmp_path / "r.json", progress=False, transport=transport)


def test_android_native_pushes_runs_pulls_and_cleans_up(phone_plan, tmp_path):
    from edgelight.bench.records import read_results

    transport, player = replay("adb_native_transcript.jsonl")
    records = phone_bench(phone_plan, transport, tmp_path)
    assert not player.exchanges, f"{len(player.exchanges)} recorded exchanges never made"
    assert [r["status"] for r in records] == ["ok", "ok", "not_runnable"] and read_results(tmp_path / "r.json") == records
    fp32, w8a8 = records[:2]
    assert (fp32["accuracy"]["top1"], w8a8["accuracy"]["top1"]) == (357 / 360, 356 / 360)  # the runner's own top-1 on the phone
    assert fp32["artifact"]["path"] == str(phone_plan[0]) and len(fp32["artifact"]["sha256"]) == 64  # what only the host knows
    dev = fp32["device"]
    assert (dev["kind"], dev["name"], dev["os"], dev["soc"], dev["cores_requested"]) == ("android", "Google Pixel 7", "Android 14 (API 34)", "Google GS201", "c0")
    pushed = [c[-1].rsplit("/", 1)[-1] for c in player.calls if c[3:4] == ["push"]]
    assert pushed == ["edgelight-bench", "artifact0.pte", "artifact1.pte", "inputs0.f32", "labels0.i32", "plan.json"]
    assert player.calls[-1][3:] == ["shell", "rm -rf /data/local/tmp/edgelight-native"]  # nothing left on the phone
    # the ETDumps the runner wrote on the phone come back with adb pull and become each record's op profile
    assert [c[4].rsplit("/", 1)[-1] for c in player.calls if c[3:4] == ["pull"]] == ["artifact0.etdump", "artifact1.etdump"]
    for record, kernel in ((fp32, "Convolution (NHWC, F32)"), (w8a8, "Convolution (NHWC, QC8)")):
        ops = [row["op"] for row in record["op_profile"]]
        assert "DELEGATE_CALL" in ops and any(kernel in op for op in ops), ops


def test_android_native_phone_that_drops_keeps_the_finished_record(phone_plan, tmp_path):
    from edgelight.bench.records import read_results
    from edgelight.bench.transport import DeviceError

    transport, player = replay("adb_native_drop_transcript.jsonl")
    with pytest.raises(DeviceError, match="dropped"):
        phone_bench(phone_plan, transport, tmp_path)
    kept = read_results(tmp_path / "r.json")
    assert [r["status"] for r in kept] == ["ok", "error", "not_runnable"] and "dropped" in kept[1]["error"]
    assert not player.exchanges


def test_android_native_runner_killed_mid_plan_is_that_record(phone_plan, tmp_path):
    transport, _ = replay("adb_native_killed_transcript.jsonl")
    records = phone_bench(phone_plan, transport, tmp_path)
    assert [r["status"] for r in records] == ["ok", "error", "not_runnable"]
    assert records[1]["error"].startswith("edgelight-bench exited with code 137")
    assert records[0]["op_profile"] and not records[1].get("op_profile")  # the finished record's ETDump was pulled


@pytest.mark.parametrize("setup, message", [
    (lambda tmp: None, "set EDGELIGHT_ANDROID_RUNNER"),
    (lambda tmp: tmp, "no edgelight-bench in"),
    (lambda tmp: ndk_stand_in(tmp, "/lib/ld-linux-aarch64.so.1"), "is a glibc build"),
    (lambda tmp: (tmp.mkdir(exist_ok=True), shutil.copy(shutil.which("true"), tmp / "edgelight-bench"))[0] or tmp, "not an arm64"),
])
def test_android_native_refuses_a_missing_or_wrong_runner_before_touching_the_phone(phone_plan, tmp_path, monkeypatch, setup, message):
    from edgelight.bench.harness import run_bench
    from edgelight.bench.transport import AdbTransport, RecordedAdb
    from edgelight.errors import UsageError

    folder = setup(tmp_path / "runner")
    if folder is None:
        monkeypatch.delenv("EDGELIGHT_ANDROID_RUNNER")
    else:
        monkeypatch.setenv("EDGELIGHT_ANDROID_RUNNER", str(folder))
    with pytest.raises(UsageError, match=message):
        run_bench(phone_plan, device="android", runner="native", json_out=tmp_path / "out" / "r.json", progress=False, transport=AdbTransport(executor=RecordedAdb([])))
    assert not (tmp_path / "out").exists()  # refused before any folder was made


def test_ios_has_no_native_runner(phone_plan):
    from edgelight.bench.harness import run_bench
    from edgelight.errors import UsageError

    with pytest.raises(UsageError, match="on iOS the demo app measures"):
        run_bench(phone_plan, device="ios", runner="native", progress=False)
