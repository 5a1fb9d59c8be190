"""Training with each paper's recipe (``recipes``) and one loop (``loop``)."""

from edgelight.train.loop import TrainResult, evaluate, train
from edgelight.train.recipes import RECIPES, Recipe, default_recipe

__all__ = ["RECIPES", "Recipe", "TrainResult", "default_recipe", "evaluate", "train"]
