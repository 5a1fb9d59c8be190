"""Train the built-in digits checkpoints with the project's own command, and measure the runs.

    python bench/train_digits.py [--models lrunet-14-1x shiftresnet-20-e3 mobilenetv2-cifar-050] [--out edgelight/pretrained]

Each model runs as ``edgelight train MODEL --dataset digits --out OUT/MODEL`` in a child process (the
short ``digits`` recipe). Measured per run: wall time of the command, the training process's peak RSS, and from
its metrics.json history the epoch and training seconds at which test accuracy first reached 0.97.
Writes bench/results/train_digits.json (with this command line). With the default --out the runs
are the committed built-in checkpoints (edgelight/pretrained/), so the figures and the weights come
from the same command.
"""

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("lrunet-14-1x", "shiftresnet-20-e3", "mobilenetv2-cifar-050")
TARGET_ACCURACY = 0.97
TRAINING_STATE = ("last.safetensors", "optimizer.safetensors", "train_state.json")  # resume files, not shipped


def train_one(model: str, out: Path, epochs: int | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    args = ["train", model, "--dataset", "digits", "--out", os.path.relpath(out, ROOT)] + (["--epochs", str(epochs)] if epochs else [])
    cmd = [str(Path(sys.executable).with_name("edgelight")), *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(['edgelight', *args])} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    for name in TRAINING_STATE:
        (out / name).unlink(missing_ok=True)
    metrics = json.loads((out / "metrics.json").read_text())
    reached = next((h for h in metrics["history"] if h["test_accuracy"] >= TARGET_ACCURACY), None)
    return {
        "model": model,
        "command": shlex.join(["edgelight", *args]),
        "wall_seconds": round(wall, 1),
        "train_seconds": metrics["train_seconds"],
        "peak_rss_mb": metrics["peak_rss_mb"],  # the training process's own peak RSS (getrusage)
        "epochs": metrics["epochs"],
        "test_accuracy": metrics["test_accuracy"],
        "best_epoch": metrics["best_epoch"],
        "params": metrics["params"],
        f"first_epoch_at_{TARGET_ACCURACY}": reached and reached["epoch"],
        f"train_seconds_to_{TARGET_ACCURACY}": reached and reached["train_seconds"],
        "threads": metrics["threads"],
        "checkpoint_bytes": sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--out", type=Path, default=ROOT / "edgelight" / "pretrained")
    ap.add_argument("--epochs", type=int, default=None, help="override the digits recipe's epoch count")
    args = ap.parse_args(argv)
    rows = []
    for model in args.models:
        print(f"training {model} ...", flush=True)
        rows.append(train_one(model, args.out / model, args.epochs))
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "command": shlex.join(["python", "bench/train_digits.py", *(argv if argv is not None else sys.argv[1:])]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "target_accuracy": TARGET_ACCURACY,
        "runs": rows,
    }
    path = ROOT / "bench" / "results" / "train_digits.json"
    if path.is_file():  # keep the other models' latest runs; each row carries its own command
        kept = [r for r in json.loads(path.read_text())["runs"] if r["model"] not in args.models]
        result["runs"] = kept + rows
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {path}")
    return 0 if all(r["test_accuracy"] >= TARGET_ACCURACY for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
