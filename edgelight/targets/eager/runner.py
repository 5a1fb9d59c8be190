"""Runs a checkpoint in eager PyTorch: the reference every artifact is compared with."""

from pathlib import Path

import numpy as np


class EagerRunner:
    def load(self, path: Path, threads: int | None = None, hints: dict | None = None) -> None:
        import torch

        from edgelight.checkpoint import load_checkpoint

        if threads:
            torch.set_num_threads(threads)
        path = Path(path)
        self.model = load_checkpoint(path.parent if path.is_file() else path).model.eval()

    def run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

    def close(self) -> None:
        self.model = None
