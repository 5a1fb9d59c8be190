"""The model zoo. Importing this package registers every family (one file each)."""

from edgelight.models import densenet, lrunet, mobilenet, rpg, shiftresnet  # noqa: F401  (registration)
from edgelight.models._registry import ModelSpec, UnknownModelError, create_model, get_spec, list_models

__all__ = ["ModelSpec", "UnknownModelError", "create_model", "get_spec", "list_models"]
