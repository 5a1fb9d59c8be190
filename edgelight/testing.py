"""Model fixtures for tests and benchmarks that have no trained weights (kept out of the checkpoint format)."""

from pathlib import Path

from edgelight.checkpoint import Checkpoint, Preprocessing, save_checkpoint


def trained_like_batchnorm(model, seed: int = 0):
    """Random BatchNorm affine parameters and running statistics, in place (returns the eval model).

    A fresh BatchNorm is the identity in eval mode and equal across LruNet's reuses, so an untrained
    model folds, dedupes and compares like no trained one does; benchmarks and tests that have no
    trained weights use this instead.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


def random_checkpoint(name: str, out_dir: Path, seed: int = 0, size: int = 32, **model_args) -> Path:
    """A checkpoint directory of ``name`` (built with ``model_args``) with random weights and trained-like BatchNorms."""
    import torch

    from edgelight.models import create_model

    torch.manual_seed(seed)
    model = trained_like_batchnorm(create_model(name, **model_args), seed)
    save_checkpoint(out_dir, Checkpoint(model, name, dict(model.model_args), [str(i) for i in range(10)], Preprocessing((3, size, size))))
    return Path(out_dir)


def write_digit_folder(root: Path, per_class: int | None = None, layout: str = "classes", size: int = 16) -> Path:
    """scikit-learn's digits written out as PNG files in class folders (real images for the folder reader):
    ``layout`` "classes" gives ROOT/<digit>/*.png, "split" gives ROOT/train/<digit>/ + ROOT/test/<digit>/ (every 5th to test)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    counts: dict[int, int] = {}
    for i, (image, label) in enumerate(zip(bunch.images, bunch.target)):
        k = int(label)
        if per_class is not None and counts.get(k, 0) >= per_class:
            continue
        counts[k] = counts.get(k, 0) + 1
        part = ("test" if counts[k] % 5 == 0 else "train") if layout == "split" else ""
        folder = Path(root) / part / str(k)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image / 16.0 * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").resize((size, size), Image.BILINEAR).save(folder / f"{i:04d}.png")
    return Path(root)
