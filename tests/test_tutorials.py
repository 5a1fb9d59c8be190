"""The tutorials in docs/tutorials/ run as written, on small data the test writes (digits as PNG class folders).

Each ```bash block runs in order in one working folder; a ```python block whose first line is
``# file: NAME`` is written to NAME, any other ```python block is run with this interpreter.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs" / "tutorials"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)


def run_tutorial(page: Path, cwd: Path) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
    done = []
    for kind, code in BLOCK.findall(page.read_text()):
        first = code.splitlines()[0]
        if kind == "python" and first.startswith("# file: "):
            (cwd / first.removeprefix("# file: ").strip()).write_text(code)
            continue
        command = ["bash", "-euo", "pipefail", "-c", code] if kind == "bash" else [sys.executable, "-c", code]
        proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{page.name}: block failed:\n{code}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        done.append(proc)
    assert done, f"{page} has no runnable blocks"
    return done


@pytest.mark.long
def test_your_images_tutorial_trains_exports_every_target_and_benches(tmp_path):
    import json

    from edgelight.bench.records import read_results
    from edgelight.testing import write_digit_folder

    write_digit_folder(tmp_path / "photos")
    run_tutorial(DOCS / "your-images.md", tmp_path)
    exports = sorted(p.name for p in (tmp_path / "exports").iterdir() if not p.name.endswith(".json"))
    assert exports == ["shiftresnet-20-e1_coreml_fp16.mlpackage", "shiftresnet-20-e1_executorch_fp32.pte", "shiftresnet-20-e1_onnx_fp32.onnx",
                       "shiftresnet-20-e1_tflite_fp32.tflite", "shiftresnet-20-e1_tflite_w8a8.tflite"]
    for name in exports:
        side = json.loads((tmp_path / "exports" / f"{name}.json").read_text())
        assert side["data"]["kind"] == "folder" and side["data"]["path"] == str((tmp_path / "photos").resolve())
        assert side["verification"]["status"] in ("passed", "inspected")
    int8 = json.loads((tmp_path / "exports" / "shiftresnet-20-e1_tflite_w8a8.tflite.json").read_text())["verification"]
    assert int8["dataset"] == "photos-test" and int8["samples"] == 354 and int8["accuracy"] >= int8["reference_accuracy"] - 0.01  # on its own data
    records = read_results(tmp_path / "results.json")
    assert len(records) == 5 and all(r["status"] == "ok" for r in records)
    assert all(r["accuracy"]["dataset"] == "photos-test" and r["accuracy"]["top1"] > 0.8 and len(r["latency_ms"]["rounds"]) == 2 for r in records)
    assert (tmp_path / "report" / "report.html").is_file()


@pytest.mark.long
def test_custom_shift_network_tutorial_exports_a_user_module(tmp_path):
    import json

    procs = run_tutorial(DOCS / "custom-shift-network.md", tmp_path)
    assert "exports/tinyshiftnet_tflite_w8a8.tflite" in procs[0].stdout  # named after the class
    side = json.loads((tmp_path / "exports" / "shiftnet_onnx_fp32.onnx.json").read_text())
    assert side["weights"] == "user" and side["verification"]["dataset"] == "digits-test" and side["verification"]["samples"] == 360
    assert "shiftnet" in procs[-1].stdout and "ok" in procs[-1].stdout


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.stem)
def test_every_tutorial_is_run_by_a_test(page):
    assert page.stem.replace("-", "_") in Path(__file__).read_text()
