"""ExecuTorch target: what reaches XNNPACK, the native-kernel option, the runner's errors.

Every artifact here is a real .pte run by ExecuTorch's Python runtime (the C++ runtime and XNNPACK
the Android app links).
"""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("executorch.runtime")

from edgelight.targets import TargetError, get_target  # noqa: E402
from edgelight.targets.executorch.lowering import distinct_cat_inputs, inspect_program  # noqa: E402

TARGET = get_target("executorch")


@pytest.mark.parametrize("model, precision", [("shiftresnet-20-e3", "fp32"), ("shiftresnet-20-e3", "w8a8"), ("lrunet-4-1x", "w8a8")])
def test_the_whole_graph_is_one_xnnpack_delegate(exported, random_checkpoints, model, precision):
    """The shift (one-hot depthwise conv), the shuffles and LruNet's channel duplication all stay inside XNNPACK:
    no portable kernel and no NCHW<->NHWC round trip between partitions (LruNet w8a8 on its 4-reuse member)."""
    result = exported(model if model != "lrunet-4-1x" else str(random_checkpoints(model)), "executorch", precision)
    assert result.op_inventory == {"delegate:XnnpackBackend": 1}, result.op_inventory
    assert any("in 1 subgraph(s)" in n for n in result.notes), result.notes
    assert result.verification["status"] == "passed"



def test_lrunet_fp32_runs_each_reused_block_as_a_loop(exported):
    """lrunet-14-1x fp32 (reuse=auto): each of its 4 stages is a scan whose body is one XNNPACK delegate holding
    the shared weights; outside XNNPACK only the loops' own ops; no weights-cache hint needed in the sidecar;
    each weight stored once (the file's weight bytes are the model's 206,282 parameters and its BatchNorm rows)."""
    from edgelight.targets.executorch.reuse_loop import LOOP_OPS

    result = exported("lrunet-14-1x", "executorch", "fp32")
    inventory = dict(result.op_inventory)
    assert inventory.pop("delegate:XnnpackBackend") == 9 and set(inventory) <= LOOP_OPS, result.op_inventory  # 5 parts around 4 loops + 4 bodies
    assert inventory["aten::select_copy.int_out"] == 4  # one row of scales and shifts per step
    assert any("4 reused block(s) as loops" in n for n in result.notes), result.notes
    assert json.loads(result.sidecar.read_text())["runtime_options"] == {}
    assert result.verification["status"] == "passed"
    weights = inspect_program(result.artifact)["weights_bytes"]
    assert 206_282 * 4 * 0.95 < weights < 206_282 * 4 * 1.05, weights

def test_distinct_cat_inputs_splits_a_repeated_input():
    class Duplicate(torch.nn.Module):
        def forward(self, x):
            y = torch.relu(x)
            return torch.cat([y, y, y], 1)

    ep = torch.export.export(Duplicate(), (torch.rand(1, 2, 4, 4),))
    assert distinct_cat_inputs(ep) == 2
    cat = next(n for n in ep.graph.nodes if n.target == torch.ops.aten.cat.default)
    assert len(set(cat.args[0])) == 3
    x = torch.rand(1, 2, 4, 4)
    assert torch.equal(ep.module()(x), torch.cat([torch.relu(x)] * 3, 1))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "w8a8"])
@pytest.mark.parametrize("ops", ["native", "delegate"])
def test_native_kernels_option(exported, precision, ops):
    """ops=native keeps the shift as edgelight's custom op, run by the C++ kernels (built on first use);
    ops=delegate runs the same kernels as EdgelightBackend calls, claimed ahead of XNNPACK."""
    result = exported("shiftresnet-20-e3", "executorch", precision, ops=ops)
    if ops == "native":
        op = "edgelight::shift2d.out" if precision == "fp32" else "edgelight::quantized_shift2d.out"
        assert result.op_inventory.get(op) == 9, result.op_inventory
    else:  # nothing outside the delegates: the int8 shift takes and gives int8, no quantize/dequantize around it
        delegates = {k: v for k, v in result.op_inventory.items() if k.startswith("delegate:")}
        assert delegates == {"delegate:EdgelightBackend": 9, "delegate:XnnpackBackend": 10}, result.op_inventory
        assert len(result.op_inventory) == 2, result.op_inventory
    v = result.verification
    assert v["status"] == "passed" and v["accuracy"] >= v["reference_accuracy"] - 0.01
    # the sidecar says what the program needs, so a runner loads the kernels without reading the program
    assert json.loads(result.sidecar.read_text())["requires"] == ["edgelight-native-kernels"]
    assert json.loads(exported("shiftresnet-20-e3", "executorch", precision).sidecar.read_text())["requires"] == []


@pytest.mark.slow
def test_channels_last_boundaries_leave_no_copy_outside_xnnpack(exported):
    """boundary=channels-last: XNNPACK's int8 partitions take the dq -> dim-order copy -> q at each edge, so the
    program is only delegate calls and verifies like the NCHW one (the kernels run on NHWC memory)."""
    result = exported("shiftresnet-20-e3", "executorch", "w8a8", ops="delegate", boundary="channels-last")
    assert result.op_inventory == {"delegate:EdgelightBackend": 9, "delegate:XnnpackBackend": 10}, result.op_inventory
    v = result.verification
    assert v["status"] == "passed" and v["top1_agreement"] >= 0.99


def test_inspection_reads_weights_and_the_planned_arena(exported):
    info = inspect_program(exported("shiftresnet-20-e3", "executorch", "fp32").artifact)
    assert 95_642 * 4 * 0.9 < info["weights_bytes"] < 95_642 * 4 * 1.2  # BatchNorms fold into the convs here
    assert info["planned_arena_bytes"] > 0 and info["inputs"] == 1


def test_a_truncated_program_is_a_one_line_error(exported, tmp_path):
    data = exported("shiftresnet-20-e3", "executorch", "fp32").artifact.read_bytes()
    broken = tmp_path / "broken.pte"
    broken.write_bytes(data[: len(data) // 2])
    runner = TARGET.make_runner()
    with pytest.raises(TargetError) as err:
        runner.load(broken, threads=1)
    assert "broken.pte" in str(err.value) and "\n" not in str(err.value)


def test_the_runner_matches_the_artifact_batch(exported):
    runner = TARGET.make_runner()
    runner.load(exported("shiftresnet-20-e3", "executorch", "fp32").artifact, threads=1)
    try:
        out = runner.run(np.zeros((1, 3, 32, 32), np.float32))
    finally:
        runner.close()
    assert out.shape == (1, 10) and out.dtype == np.float32
