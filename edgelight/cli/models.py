import json
from typing import Annotated

import typer

from edgelight.cli._common import echo, user_errors
from edgelight.errors import UsageError


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A table whose first column (the names a user types) is never cut, whatever the width: the other columns
    wrap first; where even that does not fit (a narrow terminal, or a pipe, which rich takes for 80 columns), the
    table is printed as wide as it needs and the terminal folds the lines."""
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(*headers)
    table.columns[0].no_wrap = True
    name_width = max([len(headers[0]), *(len(r[0]) for r in rows)])
    table.columns[0].min_width = name_width
    for row in rows:
        table.add_row(*row)
    console = Console() if sys.stdout.isatty() else Console(width=10_000)
    words = [max(len(w) for text in [h, *(r[i] for r in rows)] for w in (text.split() or [""])) for i, h in enumerate(headers)]
    least = name_width + sum(words[1:]) + 3 * len(headers) + 1  # names whole, the other columns wrapped at words (+ padding, borders)
    if console.width < least:
        console = Console(width=max(least, console.measure(table).minimum))
    console.print(table)


def models_command(
    pattern: Annotated[str, typer.Argument(help="glob over model names, e.g. 'shiftresnet-*'")] = "*",
    macs: Annotated[bool, typer.Option(help="count MACs at each model's default input (slower)")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the list as JSON")] = False,
) -> None:
    """List the registered models with their parameters and MACs at the default input."""
    from edgelight.models import list_models
    from edgelight.stats import model_stats

    with user_errors():
        names = list_models(pattern)
        if not names:
            raise UsageError(f"no model matches '{pattern}'")
        stats = [model_stats(name, with_macs=macs) for name in names]
        if as_json:
            echo(json.dumps([{**s, "input_shape": list(s["input_shape"])} for s in stats], indent=2))
            return
        rows = [[s["name"], f"{s['params']:,}", f"{s['macs'] / 1e6:.2f} M" if macs else "-", "x".join(map(str, s["input_shape"])),
                 f"{s['builtin_accuracy']:.4f}" if s["builtin_accuracy"] is not None else ""] for s in stats]
        print_table(["model", "params", "MACs", "input", "built-in digits accuracy"], rows)
