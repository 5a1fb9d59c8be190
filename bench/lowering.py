"""edgelight's export vs the usual one, same weights, on ExecuTorch and LiteRT, fp32 and int8.

    python bench/lowering.py [--models shiftresnet-20-e3 lrunet-14-1x resnet-20] [--runtimes executorch tflite]
                             [--blocks 5 --runs 60 --threads 2]

Variants (batch 1, 3x32x32 digits test image, weights: the built-in digits checkpoints; resnet-20 has none
and gets random weights with trained-like BatchNorm statistics, only its latency is compared):
- ours:  ``edgelight.pipeline.export_model`` (the product path, verified on the digits test split)
- slices (shiftresnet-20-e3): ``--option shift=slices``, the product path with the shift lowered as zero pad +
         slices + cat (int8: the pad, slices and cat share one scale, as XNNPACK's int8 copy ops need)
- grouped (shiftresnet-20-e3): ``--option shift=grouped``, each CSC block's channels sorted by direction
         (exact), the shift as zero pad + one stride-1 slice per contiguous block + cat
- native (ExecuTorch, shiftresnet-20-e3): ``--option ops=native``, the shift as edgelight's custom op on its
         C++ kernels, XNNPACK for the rest (what decides the target's default between kernels and lowering)
- delegate (ExecuTorch, shiftresnet-20-e3): ``--option ops=delegate``, the same kernels as EdgelightBackend
         delegate calls between the XNNPACK partitions; delegate-cl: the same with ``--option boundary=channels-last``
- custom (LiteRT, shiftresnet-20-e3 and lrunet-14-1x): ``--option ops=custom``, shift and shuffle as edgelight's
         LiteRT custom ops (NHWC kernels, int8 on int8 tensors) on LiteRT's CompiledModel, XNNPACK for the rest
- naive: the model written the usual way -- shift as zero pad + 9 strided slices + cat, channel shuffle as
         ShuffleNet's 5-D view/transpose -- exported with the stock path of each runtime (torch.export ->
         XNNPACK partitioner; litert_torch.convert; int8 by each runtime's stock PT2E quantizer, calibrated on
         the same 256 train images). A naive artifact that fails to convert or load is a result, kept with its
         error; one that loads is checked against PyTorch (its parity is reported, not assumed).
Timing: one process; all artifacts loaded, then ``--blocks`` rounds in which every variant runs ``--runs``
invokes back to back, so drift hits every variant alike. Reported per variant: median over all invokes,
p10/p90, per-block medians; and the ratios the goals are about, side by side.
Writes bench/results/lowering.json (``--out``).
"""

import argparse
import json
import platform
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgelight.checkpoint import builtin_checkpoint_dir, load_checkpoint  # noqa: E402
from edgelight.ops._library import ACTIVE_LOWERING  # noqa: E402
from edgelight.ops.lowering import shift2d_slices  # noqa: E402
from edgelight.pipeline import calibration_batches, export_model  # noqa: E402
from edgelight.targets import get_target  # noqa: E402
from edgelight.testing import random_checkpoint  # noqa: E402

MODELS = ("shiftresnet-20-e3", "lrunet-14-1x", "resnet-20")
NAIVE_MODELS = ("shiftresnet-20-e3", "lrunet-14-1x")  # resnet-20 has no shift or shuffle: one way to write it
# variants export_model builds
LOWERED_OPTIONS = {"ours": {}, "slices": {"shift": "slices"}, "grouped": {"shift": "grouped"}, "native": {"ops": "native"},
                   "delegate": {"ops": "delegate"}, "delegate-cl": {"ops": "delegate", "boundary": "channels-last"},
                   "custom": {"ops": "custom"}}


def shuffle_5d(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's reference form: rank-5 view, transpose, view back."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class naive_ops:
    """Trace the edgelight ops the way a model zoo writes them (what the lowering is measured against)."""

    def __enter__(self):
        self.token = ACTIVE_LOWERING.set({"shift2d": shift2d_slices, "channel_shuffle": shuffle_5d})

    def __exit__(self, *exc):
        ACTIVE_LOWERING.reset(self.token)


def checkpoint(name: str, tmp: Path) -> Path:
    return builtin_checkpoint_dir(name) or random_checkpoint(name, tmp / name)


def naive_executorch(model, x, precision, calibration, path: Path) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with torch.no_grad(), naive_ops():
        if precision == "w8a8":
            quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
            prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
            for batch in calibration:
                for i in range(len(batch)):
                    prepared(batch[i : i + 1])
            model = convert_pt2e(prepared)
        ep = torch.export.export(model, (x,))
    path.write_bytes(to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)


def naive_tflite(model, x, precision, calibration, path: Path) -> None:
    import litert_torch

    with torch.no_grad(), naive_ops():
        if precision == "fp32":
            path.write_bytes(litert_torch.convert(model, (x,)).model_content())
            return
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
        prepared = prepare_pt2e(torch.export.export(model, (x,)).module(), quantizer)
        for batch in calibration:
            for i in range(len(batch)):
                prepared(batch[i : i + 1])
        quantized = convert_pt2e(prepared, fold_quantize=False)
        path.write_bytes(litert_torch.convert(quantized, (x,), quant_config=QuantConfig(pt2e_quantizer=quantizer)).model_content())


NAIVE = {"executorch": naive_executorch, "tflite": naive_tflite}


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}"


def build(name: str, runtime: str, precision: str, variant: str, ckpt_dir: Path, x: torch.Tensor, tmp: Path) -> dict:
    entry = {"model": name, "runtime": runtime, "precision": precision, "variant": variant}
    target = get_target(runtime)
    path = tmp / f"{name}-{runtime}-{precision}-{variant}{target.suffix}"
    started = time.perf_counter()
    try:
        if variant in LOWERED_OPTIONS:
            options = LOWERED_OPTIONS[variant]
            result = export_model(str(ckpt_dir), runtime, precision, out=path, options=options, threads=ARGS.threads)
            v = result.verification
            entry.update(export_seconds=result.export_seconds, lower_seconds=result.lower_seconds, max_rel_diff=v["max_rel_diff"],
                         top1_agreement=v["top1_agreement"], accuracy=v["accuracy"], reference_accuracy=v["reference_accuracy"])
        else:
            ckpt = load_checkpoint(ckpt_dir)
            calibration = calibration_batches("digits", ckpt, tuple(x.shape)) if precision == "w8a8" else []
            NAIVE[runtime](ckpt.model.eval(), x, precision, calibration, path)
            entry["export_seconds"] = round(time.perf_counter() - started, 2)
        runner = target.make_runner()
        runner.load(path, ARGS.threads)
    except Exception as e:  # noqa: BLE001 (a variant that does not convert or load is a finding, not a crash)
        entry["error"] = _first_line(e)
        return entry
    info = target.inspect(path)
    entry.update(file_bytes=path.stat().st_size, ops=info.get("ops") or info.get("operators"), path=path, runner=runner)
    if variant == "naive":  # the stock path gets no verification from edgelight: measure its parity here
        with torch.no_grad():
            ref = load_checkpoint(ckpt_dir).model.eval()(x).numpy()
        got = runner.run(x.numpy())
        entry["max_rel_diff"] = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))
    return entry


def variants(name: str, runtime: str) -> tuple[str, ...]:
    if name not in NAIVE_MODELS:
        return ("ours",)
    custom = ("custom",) if runtime == "tflite" else ()
    if name != "shiftresnet-20-e3":
        chosen = ("ours", "naive", *custom)
    else:
        lowered = ("ours", "slices", "grouped", "naive")
        chosen = (*lowered, "native", "delegate", "delegate-cl") if runtime == "executorch" else (*lowered, *custom)
    return tuple(v for v in chosen if v == "ours" or ARGS.variants is None or v in ARGS.variants)


def time_all(entries, x: np.ndarray) -> None:
    live = [e for e in entries if "runner" in e]
    for e in live:
        e["samples"], e["block_medians"] = [], []
        for _ in range(ARGS.warmup):
            e["runner"].run(x)
    for _ in range(ARGS.blocks):
        for e in live:
            block = []
            for _ in range(ARGS.runs):
                t0 = time.perf_counter_ns()
                e["runner"].run(x)
                block.append((time.perf_counter_ns() - t0) / 1e6)
            e["samples"] += block
            e["block_medians"].append(round(float(np.median(block)), 4))
    for e in live:
        s = np.asarray(e.pop("samples"))
        e["latency_ms"] = {"median": round(float(np.median(s)), 4), "p10": round(float(np.percentile(s, 10)), 4),
                           "p90": round(float(np.percentile(s, 90)), 4), "min": round(float(s.min()), 4), "runs": int(s.size)}
        e.pop("runner").close()
        e.pop("path")


def ratios(entries) -> list[dict]:
    key = lambda e: (e["model"], e["runtime"], e["precision"], e["variant"])  # noqa: E731
    med = {key(e): e["latency_ms"]["median"] for e in entries if "latency_ms" in e}
    failed = {key(e): e["error"] for e in entries if "error" in e}
    wrong = {key(e): e["max_rel_diff"] for e in entries if e["variant"] == "naive" and (e.get("max_rel_diff") or 0) > 0.5}
    rows = []

    def add(what, slow, fast, goal: float | None):
        row = {"comparison": what, "numerator": "/".join(slow), "denominator": "/".join(fast), "goal": goal}
        if slow in med and fast in med:
            row["ratio"] = round(med[slow] / med[fast], 2)
            row["meets_goal"] = None if goal is None else row["ratio"] >= goal
        else:
            row["ratio"], row["why"] = None, failed.get(slow) or failed.get(fast) or "not measured"
            # a naive program that does not run loses to one that does, whatever the speed
            row["meets_goal"] = None if goal is None else (slow in failed and fast in med and slow[3] == "naive")
        if slow in wrong:
            row["note"] = f"the naive program computes wrong outputs (max relative logit error {wrong[slow]:.0f})"
        rows.append(row)

    for rt in ARGS.runtimes:
        for p in ("fp32", "w8a8"):
            for m in NAIVE_MODELS:
                add(f"{m} {rt} {p}: naive / edgelight (speedup of edgelight's export)", (m, rt, p, "naive"), (m, rt, p, "ours"), 1.5)
            add(f"{rt} {p}: resnet-20 / shiftresnet-20-e3 (>= 1: the shift model is no slower)", ("resnet-20", rt, p, "ours"), ("shiftresnet-20-e3", rt, p, "ours"), 1.0)
            for form in ("slices", "grouped"):
                add(f"shiftresnet-20-e3 {rt} {p}: default / {form} shift (> 1: {form} wins)", ("shiftresnet-20-e3", rt, p, "ours"), ("shiftresnet-20-e3", rt, p, form), None)
                add(f"{rt} {p}: resnet-20 / shiftresnet-20-e3 with the {form} shift", ("resnet-20", rt, p, "ours"), ("shiftresnet-20-e3", rt, p, form), 1.0)
            if rt == "executorch":
                add(f"shiftresnet-20-e3 {rt} {p}: lowered / native kernels (> 1: the kernels win)", ("shiftresnet-20-e3", rt, p, "ours"), ("shiftresnet-20-e3", rt, p, "native"), None)
                add(f"shiftresnet-20-e3 {rt} {p}: lowered / EdgelightBackend (> 1: the delegate wins)", ("shiftresnet-20-e3", rt, p, "ours"), ("shiftresnet-20-e3", rt, p, "delegate"), None)
                add(f"shiftresnet-20-e3 {rt} {p}: native kernels / EdgelightBackend (> 1: the delegate is faster)", ("shiftresnet-20-e3", rt, p, "native"), ("shiftresnet-20-e3", rt, p, "delegate"), None)
                add(f"{rt} {p}: resnet-20 / shiftresnet-20-e3 with EdgelightBackend", ("resnet-20", rt, p, "ours"), ("shiftresnet-20-e3", rt, p, "delegate"), 1.0)
                add(f"shiftresnet-20-e3 {rt} {p}: EdgelightBackend NCHW / channels-last boundaries (> 1: channels-last wins)", ("shiftresnet-20-e3", rt, p, "delegate"), ("shiftresnet-20-e3", rt, p, "delegate-cl"), None)
            if rt == "tflite":
                for m in NAIVE_MODELS:
                    add(f"{m} {rt} {p}: lowered / edgelight custom ops (> 1: the custom ops win)", (m, rt, p, "ours"), (m, rt, p, "custom"), None)
                add(f"{rt} {p}: resnet-20 / shiftresnet-20-e3 with edgelight custom ops", ("resnet-20", rt, p, "ours"), ("shiftresnet-20-e3", rt, p, "custom"), 1.0)
        for m in MODELS:
            add(f"{m} {rt}: fp32 / w8a8 (speedup of w8a8)", (m, rt, "fp32", "ours"), (m, rt, "w8a8", "ours"), 1.5)
        if rt == "tflite":
            add(f"shiftresnet-20-e3 {rt}: fp32 / w8a8 with edgelight custom ops", ("shiftresnet-20-e3", rt, "fp32", "custom"), ("shiftresnet-20-e3", rt, "w8a8", "custom"), 1.3)
    return [r for r in rows if r["numerator"].split("/")[0] in ARGS.models and r["denominator"].split("/")[0] in ARGS.models]


def _failure(error: str) -> str:
    if "could not load" in error:
        said = error.split("(runtime: ")[-1].split(";")[0].strip(") ") if "(runtime: " in error else ""
        return "does not load" + (f" ({said.split('] ')[-1]})" if said else "")
    return "does not convert: " + error[:80]


def table(path: Path, runtime: str | None = None) -> str:
    """Markdown rows of a results file (``--table``): what docs/targets/*.md and the README quote."""
    doc = json.loads(path.read_text())
    rows = ["| model | runtime | precision | variant | p50 ms [p10, p90] | file bytes | vs PyTorch |", "|---|---|---|---|---|---:|---|"]
    for e in doc["results"]:
        if runtime and e["runtime"] != runtime:
            continue
        lat = e.get("latency_ms")
        timing = f"{lat['median']:.3f} [{lat['p10']:.3f}, {lat['p90']:.3f}]" if lat else _failure(e["error"])
        if e.get("accuracy") is not None and e["model"] != "resnet-20":
            parity = f"top-1 {e['accuracy']:.2%} (fp32 {e['reference_accuracy']:.2%})"
        elif e.get("max_rel_diff") is not None:
            parity = f"max rel. logit error {e['max_rel_diff']:.1e}" + (" (wrong)" if e["max_rel_diff"] > 0.5 else "")
        else:
            parity = ""
        rows.append(f"| {e['model']} | {e['runtime']} | {e['precision']} | {e['variant']} | {timing} | {e.get('file_bytes', '')} | {parity} |")
    rows += ["", "| ratio (median) | value | goal |", "|---|---:|---|"]
    for r in doc["ratios"]:
        if runtime and not re.search(rf"\b{runtime}\b", r["comparison"]):
            continue
        value = f"{r['ratio']:.2f}x" if r["ratio"] is not None else f"n/a: naive {_failure(r.get('why', ''))}"
        verdict = "" if r["goal"] is None else (" met" if r["meets_goal"] else " **not met**")
        note = f"; {r['note']}" if r.get("note") else ""
        rows.append(f"| {r['comparison']} | {value} | {'info' if r['goal'] is None else '>= ' + str(r['goal'])}{verdict}{note} |")
    return "\n".join(rows) + f"\n\n({doc['command']}, {doc['date_utc']}, {doc['machine']['threads']} threads)"


def main() -> int:
    if ARGS.table:
        print(table(ARGS.out, ARGS.table_runtime))
        return 0
    from edgelight.bench.records import versions
    from edgelight.data import load_digits, normalize

    torch.set_num_threads(ARGS.threads)
    digits = load_digits()
    entries = []
    with tempfile.TemporaryDirectory(prefix="edgelight-lowering-") as tmp:
        tmp = Path(tmp)
        for name in ARGS.models:
            ckpt_dir = checkpoint(name, tmp)
            pre = load_checkpoint(ckpt_dir).preprocessing
            x = normalize(digits.test_x[:1], pre.mean, pre.std)
            for runtime in ARGS.runtimes:
                for precision in ("fp32", "w8a8"):
                    for variant in variants(name, runtime):
                        e = build(name, runtime, precision, variant, ckpt_dir, x, tmp)
                        entries.append(e)
                        print(f"built {name} {runtime} {precision} {variant}: {e.get('error') or str(e['file_bytes']) + ' bytes'}", flush=True)
        time_all(entries, x.numpy())
    result = {
        "command": shlex.join(["python", "bench/lowering.py", *sys.argv[1:]]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), "threads": ARGS.threads},
        "versions": versions(),
        "setup": {"batch": 1, "input": "3x32x32 digits test image", "runs_per_block": ARGS.runs, "blocks": ARGS.blocks, "warmup": ARGS.warmup},
        "results": entries,
        "ratios": ratios(entries),
    }
    out = ARGS.out
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    for e in entries:
        lat = e.get("latency_ms")
        figures = f"{lat['median']:.3f} ms [p10 {lat['p10']:.3f}, p90 {lat['p90']:.3f}] {e['file_bytes']:>9} B" if lat else f"ERROR {e['error']}"
        print(f"{e['model']:18} {e['runtime']:10} {e['precision']:5} {e['variant']:6} {figures}")
    for r in result["ratios"]:
        print(f"{r['comparison']:82} {r['ratio'] if r['ratio'] is not None else '-':>6} (goal {r['goal']})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--runtimes", nargs="+", default=["executorch", "tflite"], choices=["executorch", "tflite"])
    parser.add_argument("--variants", nargs="+", default=None, choices=["slices", "grouped", "naive", "native", "delegate", "delegate-cl", "custom"],
                        help="only these besides 'ours' (default: all)")
    parser.add_argument("--runs", type=int, default=60, help="invokes per block")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lowering.json", help="the results file (and the one --table reads)")
    parser.add_argument("--table", action="store_true", help="print the results file as markdown and exit")
    parser.add_argument("--table-runtime", choices=["executorch", "tflite"], default=None)
    ARGS = parser.parse_args()
    sys.exit(main())
