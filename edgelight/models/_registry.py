"""A strict model registry: names are unique and encode the variant.

Every entry carries its default input size so that the CLI, the tests and the
benchmarks can build and measure any model without knowing its family.
"""

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from edgelight.errors import UsageError


class UnknownModelError(UsageError, KeyError):
    """Raised for a name that is not registered; carries the closest names."""

    def __init__(self, name: str, suggestions: list[str]):
        self.name, self.suggestions = name, suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown model '{name}'.{hint} See `edgelight models`.")

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    build: Callable[..., nn.Module]
    input_size: int = 32
    defaults: dict = field(default_factory=dict)


_MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, family: str, build: Callable[..., nn.Module], input_size: int = 32, **defaults) -> None:
    """Register ``build(**defaults, **user_kwargs)`` under ``name``; a second registration of a name raises."""
    if name in _MODELS:
        raise ValueError(f"a model is already registered under the name '{name}'")
    _MODELS[name] = ModelSpec(name, family, build, input_size, defaults)


def get_spec(name: str) -> ModelSpec:
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(name, difflib.get_close_matches(name, _MODELS, n=3, cutoff=0.5)) from None


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(name: str, num_classes: int = 10, in_chans: int = 3, **kwargs) -> nn.Module:
    """Build a registered model; its name and arguments are kept on it for checkpoints and exports."""
    spec = get_spec(name)
    args = {**spec.defaults, "num_classes": num_classes, "in_chans": in_chans, **kwargs}
    model = spec.build(**args)
    model.model_name = name
    model.model_args = {k: v for k, v in kwargs.items()} | {"num_classes": num_classes, "in_chans": in_chans}
    model.default_input_size = spec.input_size
    return model
