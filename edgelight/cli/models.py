from typing import Annotated

import typer

from edgelight.cli._common import user_errors
from edgelight.errors import UsageError


def models_command(
    pattern: Annotated[str, typer.Argument(help="glob over model names, e.g. 'shiftresnet-*'")] = "*",
    macs: Annotated[bool, typer.Option(help="count MACs at each model's default input (slower)")] = True,
) -> None:
    """List the registered models with their parameters and MACs at the default input."""
    from rich.console import Console
    from rich.table import Table

    from edgelight.models import list_models
    from edgelight.stats import model_stats

    with user_errors():
        names = list_models(pattern)
        if not names:
            raise UsageError(f"no model matches '{pattern}'")
        table = Table("model", "params", "MACs", "input", "built-in digits checkpoint")
        for name in names:
            stats = model_stats(name, with_macs=macs)
            table.add_row(name, f"{stats['params']:,}", f"{stats['macs'] / 1e6:.2f} M" if macs else "-", "x".join(map(str, stats["input_shape"])), f"{stats['builtin_accuracy']:.4f}" if stats["builtin_accuracy"] is not None else "")
        Console().print(table)
