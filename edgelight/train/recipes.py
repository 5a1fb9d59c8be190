"""Each seed paper's training recipe as a named preset (facts: shared/reference/papers.md)."""

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Recipe:
    name: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" or "step"
    milestones: tuple[int, ...] = ()  # epochs at which a step schedule multiplies lr by gamma
    gamma: float = 0.1
    crop_padding: int = 4
    rotation: float = 0.0  # max degrees of random rotation
    flip: bool = True  # only applied where the data set allows flips
    normalize: bool = True  # LruNet trains on raw [0, 1] inputs

    def to_dict(self) -> dict:
        return asdict(self)

    def with_epochs(self, epochs: int | None) -> "Recipe":
        """Shorten or lengthen a run, scaling step milestones with it."""
        if epochs is None or epochs == self.epochs:
            return self
        scale = epochs / self.epochs
        return replace(self, epochs=epochs, milestones=tuple(max(1, round(m * scale)) for m in self.milestones))


RECIPES = {
    # okankop/CNN-layer-reuse main.py + README: lr changed by hand at 200 and 250, 300 epochs in all.
    "lrunet": Recipe("lrunet", 300, 256, 0.1, schedule="step", milestones=(200, 250), rotation=10.0, normalize=False),
    # alvinwan/shiftresnet-cifar main.py: /10 after epochs 81 and 122 (32k/48k iterations), 164 epochs.
    "shiftresnet": Recipe("shiftresnet", 164, 128, 0.1, schedule="step", milestones=(81, 122)),
    # kuangliu/pytorch-cifar: cosine over 200 epochs, the 94.43% MobileNetV2 anchor.
    "mobilenetv2": Recipe("mobilenetv2", 200, 128, 0.1),
    # Short default for the built-in digits set (1,437 training images): no flips, small shifts.
    "digits": Recipe("digits", 15, 64, 0.05, crop_padding=2, rotation=10.0, flip=False),
}

FAMILY_RECIPES = {"lrunet": "lrunet", "shiftresnet": "shiftresnet", "resnet": "shiftresnet", "mobilenetv1": "mobilenetv2", "mobilenetv2": "mobilenetv2"}


def default_recipe(family: str, dataset: str) -> Recipe:
    """digits gets the short preset; the CIFAR-style sets get the family's paper recipe."""
    if dataset == "digits":
        return RECIPES["digits"]
    return RECIPES[FAMILY_RECIPES.get(family, "mobilenetv2")]
