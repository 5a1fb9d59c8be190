"""Parameter and MAC counts, computed the same way for the CLI, the README table and bench records."""

import json

import torch


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: torch.nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass (convs and matmuls; the shift is zero-FLOP)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(example)
    return counter.get_total_flops() // 2


def model_stats(name: str, with_macs: bool = True) -> dict:
    """Params, MACs at the default input, and the built-in checkpoint's accuracy if there is one."""
    from edgelight.checkpoint import builtin_checkpoint_dir
    from edgelight.models import create_model, get_spec

    spec = get_spec(name)
    model = create_model(name)
    shape = (3, spec.input_size, spec.input_size)
    macs = count_macs(model, torch.zeros(1, *shape)) if with_macs else None
    builtin = builtin_checkpoint_dir(name)
    accuracy = json.loads((builtin / "metrics.json").read_text()).get("test_accuracy") if builtin and (builtin / "metrics.json").is_file() else None
    return {"name": name, "family": spec.family, "params": count_params(model), "macs": macs, "input_shape": shape, "builtin_accuracy": accuracy}
