"""One evaluation for every runner: training's per-epoch check, export verification and the bench child.

Numpy only (the bench child must not import torch for it). A runner is anything with
``run(x: float32 NCHW) -> logits``; an ``nn.Module`` is wrapped. Artifacts have a fixed batch, so the
last batch is padded by repeating its last image and the padding's outputs are dropped.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class EvalSet:
    name: str  # e.g. "digits-test", "photos-test"
    x: np.ndarray  # preprocessed float32 [N, C, H, W]
    y: np.ndarray | None  # int64 [N] class indices into ``classes``; None for unlabeled inputs
    classes: list[str]


@dataclass
class Evaluation:
    logits: np.ndarray  # [N, classes]
    correct: int | None
    samples: int

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None else self.correct / self.samples


def _predict(runner):
    if not hasattr(runner, "forward"):  # a runtime's runner (an nn.Module may well have a run() of its own)
        return runner.run
    import torch

    runner.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return runner(torch.from_numpy(x)).numpy()

    return run


def fixed_batches(x: np.ndarray, n: int):
    """(start, batch of exactly n, how many of it are real) over x."""
    for i in range(0, len(x), n):
        b = x[i : i + n]
        real = len(b)
        if real < n:
            b = np.concatenate([b, np.repeat(b[-1:], n - real, axis=0)])
        yield i, np.ascontiguousarray(b, dtype=np.float32), real


def evaluate(runner, data: EvalSet, batch: int = 1) -> Evaluation:
    """Logits for every input of ``data`` and, when it has labels, how many are classified right."""
    predict = _predict(runner)
    outs = []
    for _, b, real in fixed_batches(data.x, batch):
        logits = np.asarray(predict(b))
        if logits.ndim != 2 or logits.shape[0] != batch:
            raise ValueError(f"expected logits of shape ({batch}, classes), got {logits.shape}")
        outs.append(logits[:real])
    logits = np.concatenate(outs) if outs else np.zeros((0, len(data.classes)), np.float32)
    correct = None if data.y is None else int((logits.argmax(1) == data.y).sum())
    return Evaluation(logits, correct, len(data.x))
