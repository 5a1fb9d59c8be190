"""LruNet's layer reuse as a loop in the .pte: one XNNPACK delegate per shared block, run R times by a scan.

Unrolled, a block reused R times is R copies of its convs in the graph: XNNPACK packs the shared weights once
per copy at load (or once per process with its weights cache, which the runner must switch on) and the
lowering passes walk R copies. Here each ``LruBlock`` becomes ``torch.ops.higher_order.scan`` over its
per-reuse BatchNorms (one row of scales and shifts per reuse), and the scan's body is one reuse lowered on its own to one
XNNPACK delegate that holds the shared weights: packed once when the program loads, lowered once.
ExecuTorch's stock runtime runs it (the emitter writes the scan as a jump loop over portable select/copy
ops), so the artifact needs nothing of edgelight on the phone.

How: the model is exported with a stand-in body of the right signature (the scan of a real body would pass
the shared weights in as loop inputs, which XNNPACK would take as run-time tensors and re-pack every step);
after ``to_edge_transform_and_lower`` each stand-in is swapped for the lowered reuse, and its named data
(XNNPACK's weights) is merged into the program's. The last reuse of a block has no shuffle after it: the
body always shuffles and the inverse permutation follows the scan, a copy inside the next delegate.
"""

import operator

import torch
from torch import nn
from torch._higher_order_ops.scan import scan

from edgelight.layers import LruBlock
from edgelight.shared_weights import run_hooked
from edgelight.targets.base import TargetError

# the portable ops ExecuTorch's emitter writes for a scan: the loop counter, the row select, the carry copy
LOOP_OPS = frozenset({"aten::sym_size.int", "aten::select_copy.int_out", "aten::copy_", "executorch_prim::add.Scalar", "executorch_prim::eq.Scalar", "executorch_prim::sub.Scalar"})


class ReuseStep(nn.Module):
    """One reuse of an ``LruBlock``: the shared convs, that reuse's BatchNorms as one row of (dw scale, dw shift,
    pw scale, pw shift), the shuffle. One row: one select per loop step in the program instead of four."""

    def __init__(self, block: LruBlock):
        super().__init__()
        self.dw, self.pw, self.shuffle = block.dw, block.pw, block.shuffle

    def forward(self, x: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
        wide, narrow = self.dw.out_channels, self.pw.out_channels
        ends = [wide, 2 * wide, 2 * wide + narrow, 2 * (wide + narrow)]  # slices: XNNPACK takes no split
        dw_scale, dw_shift, pw_scale, pw_shift = (row[start:end].view(1, -1, 1, 1) for start, end in zip([0, *ends], ends))
        y = self.pw(self.dw(x) * dw_scale + dw_shift) * pw_scale + pw_shift
        return self.shuffle(torch.relu(y + x))


def affine_rows(block: LruBlock) -> torch.Tensor:
    """[reuses, 6 x planes]: each reuse's two BatchNorms (eval) as scale and shift, in ``ReuseStep``'s order."""
    rows = []
    for dw_bn, pw_bn in zip(block.dw_bn, block.pw_bn, strict=True):
        parts = []
        for bn in (dw_bn, pw_bn):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            parts += [scale, bn.bias - bn.running_mean * scale]
        rows.append(torch.cat(parts))
    return torch.stack(rows).detach()


def unshuffle(x: torch.Tensor) -> torch.Tensor:
    """The inverse of ``LruShuffle`` (which gives ``out[2i] = x[C/2 + i]``, ``out[2i + 1] = x[i]``)."""
    n, c, h, w = x.shape
    paired = x.reshape(n, c // 2, 2, h, w).transpose(1, 2).reshape(n, c, h, w)  # [x[C/2:], x[:C/2]]
    return torch.cat([paired[:, c // 2 :], paired[:, : c // 2]], dim=1)


class LoopedBlock(nn.Module):
    """What the program is exported with in place of an ``LruBlock``: a scan over its reuses whose body is a
    stand-in (``swap_in_bodies`` puts the lowered ``ReuseStep`` there), then the inverse of the last shuffle."""

    def __init__(self, block: LruBlock):
        super().__init__()
        self.register_buffer("rows", affine_rows(block))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = scan(lambda carry, row: (carry.clone(), []), x, self.rows)  # no per-step outputs to stack
        return unshuffle(out)


def loop_reused_blocks(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, list[tuple[ReuseStep, tuple]]]:
    """A copy of ``model`` with each LruBlock of two or more reuses as a ``LoopedBlock``, and per block (in
    graph order) the ``ReuseStep`` to lower and its example inputs. No LruBlock: the model unchanged, []."""
    import copy

    blocks = [m for m in model.modules() if isinstance(m, LruBlock) and len(m.dw_bn) > 1]
    if not blocks:
        return model, []
    shapes: dict[int, torch.Size] = {}  # in call order

    def record(mod, inputs):  # returns None: a pre-hook's return value would replace the inputs
        shapes.setdefault(id(mod), inputs[0].shape)

    run_hooked(model, example, [b.register_forward_pre_hook(record) for b in blocks])
    called = list(shapes)
    order = sorted((b for b in blocks if id(b) in shapes), key=lambda b: called.index(id(b)))  # an unused block stays as it is
    looped, steps = copy.deepcopy(model), []
    by_id = {id(orig): name for name, orig in model.named_modules()}
    for block in order:
        name = by_id[id(block)]
        replacement = LoopedBlock(block)
        parent, _, leaf = name.rpartition(".")
        setattr(looped.get_submodule(parent) if parent else looped, leaf, replacement)
        steps.append((ReuseStep(block).eval(), (torch.zeros(shapes[id(block)]), replacement.rows[0])))
    return looped, steps


def swap_in_bodies(edge, lowered_steps: list) -> None:
    """Replace each scan's stand-in body (in graph order) by a call of its lowered reuse; merge their weights."""
    from executorch.exir.delegate import executorch_call_delegate
    from executorch.exir.program._program import collect_named_data_store_from_exported_program

    program = edge.exported_program()
    gm = program.graph_module
    scans = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is torch.ops.higher_order.scan]
    if len(scans) != len(lowered_steps):
        raise TargetError(f"executorch reuse=loop: {len(scans)} scans in the program for {len(lowered_steps)} reused blocks (a block called more than once?); export with -O reuse=unrolled")
    for node, (step, order) in zip(scans, lowered_steps, strict=True):
        body = getattr(gm, node.args[0].target)
        graph = body.graph
        inputs = [n for n in graph.nodes if n.op == "placeholder"]
        output = next(n for n in graph.nodes if n.op == "output")
        carry_out = output.args[0][0]
        body.add_module("reuse_step", step)
        with graph.inserting_before(output):
            call = graph.call_function(executorch_call_delegate, (graph.get_attr("reuse_step"), *(inputs[i] for i in order)))
            result = graph.call_function(operator.getitem, (call, 0))
        result.meta["val"] = carry_out.meta["val"]
        call.meta["val"] = (result.meta["val"],)
        output.args = ((result, *output.args[0][1:]),)
        graph.eliminate_dead_code()
        body.recompile()
    # the manager collected the named data of the delegates it saw when it was made; the bodies came later
    collect_named_data_store_from_exported_program(program, edge._named_data_store)


def lower_step(step: ReuseStep, example: tuple, prepare) -> tuple[object, list[int]]:
    """One reuse, exported and lowered alone: its single XNNPACK delegate (a LoweredBackendModule) and, for
    each of the delegate's arguments, the position of the step input it is."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        ep = prepare(torch.export.export(step, example))
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    gm = edge.exported_program().graph_module
    calls = [n for n in gm.graph.nodes if n.op == "call_function"]
    if [str(n.target) for n in calls] != ["executorch_call_delegate", "<built-in function getitem>"]:
        raise TargetError("executorch reuse=loop: one reuse did not lower to a single XNNPACK delegate: " + ", ".join(sorted({str(n.target) for n in calls})))
    # the delegate takes the step's inputs in its own order: record where each of its arguments comes from
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    return getattr(gm, calls[0].args[0].target), [placeholders.index(a) for a in calls[0].args[1:]]
