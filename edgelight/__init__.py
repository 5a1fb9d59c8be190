"""edgelight: parameter-efficient CNNs from the paper to the phone.

The top level stays light: torch and the runtimes are imported only when a
function that needs them is called.
"""

__version__ = "0.1.0"


def create_model(name: str, **kwargs):
    """Build a registered model by name (see ``list_models``)."""
    from edgelight.models import create_model as _create

    return _create(name, **kwargs)


def list_models(pattern: str = "*") -> list[str]:
    from edgelight.models import list_models as _list

    return _list(pattern)


def export(model, example_input, target: str, **kwargs):
    """Export your own eval-mode ``nn.Module`` (see ``edgelight.pipeline.export`` for the arguments): lowered,
    verified by the target's runtime, written atomically with its sidecar; returns the ``ExportResult``."""
    from edgelight.pipeline import export as _export

    return _export(model, example_input, target, **kwargs)


__all__ = ["__version__", "create_model", "export", "list_models"]
