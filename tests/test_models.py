"""The model zoo: every registered model builds, runs forward and backward, exports with its custom ops as
single nodes, and has the reference implementations' parameter counts; the registry is strict."""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import edgelight
from edgelight.layers import LruShuffle, Shift
from edgelight.models import UnknownModelError, create_model, get_spec, list_models
from edgelight.models._registry import register_model
from edgelight.models.lrunet import LruNet
from edgelight.models.rpg import ONE_CONV_LAYER, ParameterRing, RingConv2d
from edgelight.models.shiftresnet import DEPTHS, CifarResNet
from edgelight.stats import count_params

MODELS = list_models()
# one cheap model per family (test_representatives_cover_every_family keeps this honest)
REPRESENTATIVES = ["densenet-bc-100-k12", "lrunet-4-1x", "lrunet-1-2x", "mobilenetv1-025", "mobilenetv2-025", "mobilenetv2-cifar-025", "resnet-20", "rpg-resnet18", "shiftresnet-20-e1"]
SHIFT2D = torch.ops.edgelight.shift2d.default
SHUFFLE = torch.ops.edgelight.channel_shuffle.default


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@torch.no_grad()
def calibrate_bn(model: nn.Module, in_chans: int, seed: int = 0) -> nn.Module:
    """Random BN affine parameters and running statistics measured on random images, so that eval-mode
    comparisons see every BN and the signal survives the depth (fresh statistics would let it vanish)."""
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batch
    model.train()(torch.randn(8, in_chans, 32, 32, generator=g))
    for m in bns:
        m.momentum = 0.1
    return model


def build(name: str, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return calibrate_bn(create_model(name, **kwargs), kwargs.get("in_chans", 3), seed)


def images(n: int, c: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def expected_custom_nodes(name: str) -> tuple[int, int]:
    """(shift2d, channel_shuffle) uses: one shift per CSC block; in each of LruNet's 4 stages (N - 1) shuffles
    between reuses and N in front of the depthwise conv, which repeats each channel (RepeatedDepthwise)."""
    if m := re.fullmatch(r"shiftresnet-(\d+)-e\d+", name):
        return 3 * DEPTHS[int(m.group(1))], 0
    if m := re.fullmatch(r"lrunet-(\d+)-\dx", name):
        return 0, (2 * int(m.group(1)) - 1) * 4
    return 0, 0


# ---------------------------------------------------------------- every registered model


def test_registry_is_populated():
    assert len(MODELS) == len(set(MODELS)) >= 39
    for family in ("lrunet", "shiftresnet", "resnet", "mobilenetv1", "mobilenetv2", "densenet", "rpg"):
        assert any(get_spec(n).family == family for n in MODELS), family


def test_representatives_cover_every_family():
    assert set(REPRESENTATIVES) <= set(MODELS)
    assert {get_spec(n).family for n in REPRESENTATIVES} == {get_spec(n).family for n in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_forward(name):
    model = build(name).eval()
    with torch.no_grad():
        for size in (32, 40):  # 32x32 for every model (also the 224-default ones), then a non-default size
            logits = model(images(2, 3, size))
            assert logits.shape == (2, 10), size
            assert torch.isfinite(logits).all(), size
        assert not torch.equal(logits[0], logits[1])  # the output depends on the input


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_forward_other_classes_and_channels(name):
    model = build(name, num_classes=7, in_chans=1).eval()
    assert model.model_args == {"num_classes": 7, "in_chans": 1}
    with torch.no_grad():
        for size in (32, 40):
            logits = model(images(2, 1, size))
            assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    with pytest.raises(RuntimeError):
        model(images(2, 3, 32))  # it really takes one channel


@pytest.mark.parametrize("name", MODELS)
def test_backward(name):
    model = build(name).train()
    loss = F.cross_entropy(model(images(2, 3, 32, seed=1)), torch.tensor([3, 7]))
    assert torch.isfinite(loss)
    loss.backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert params
    for n, p in params:
        assert p.grad is not None, f"{n} got no gradient"
        assert p.grad.shape == p.shape and torch.isfinite(p.grad).all(), n
    assert any(p.grad.abs().sum() > 0 for _, p in params)
    if name.startswith("rpg-"):  # the generated convs send their gradient to the one shared ring
        assert model.ring.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", MODELS)
def test_export_keeps_custom_ops_as_single_nodes(name):
    model = build(name).eval()
    x = images(2, 3, 32, seed=2)
    ep = torch.export.export(model, (x,))
    calls = [n for n in ep.graph.nodes if n.op == "call_function"]
    shifts, shuffles = sum(n.target == SHIFT2D for n in calls), sum(n.target == SHUFFLE for n in calls)
    assert (shifts, shuffles) == expected_custom_nodes(name)
    assert shifts == sum(isinstance(m, Shift) for m in model.modules())
    others = [n.target for n in calls if "edgelight" in str(n.target) and n.target not in (SHIFT2D, SHUFFLE)]
    assert others == []
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x), model(x), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- parameter counts (the reference implementations')

PARAM_COUNTS = [
    ("lrunet-14-1x", {}, 206_282),
    ("lrunet-1-1x", {}, 131_402),
    ("shiftresnet-20-e1", {}, 34_906),
    ("shiftresnet-20-e3", {}, 95_642),
    ("shiftresnet-20-e6", {}, 186_746),
    ("shiftresnet-20-e9", {}, 277_850),
    ("resnet-20", {}, 272_474),
    ("mobilenetv2-100", {"num_classes": 1000}, 3_504_872),
    ("mobilenetv2-cifar-100", {}, 2_296_922),
]


@pytest.mark.parametrize("name,kwargs,expected", PARAM_COUNTS, ids=[p[0] for p in PARAM_COUNTS])
def test_parameter_count(name, kwargs, expected):
    assert count_params(create_model(name, **kwargs)) == expected


@pytest.mark.parametrize("name", list_models("lrunet-*-1x"))
def test_lrunet_parameter_formula(name):
    reuses = int(name.split("-")[1])
    assert count_params(create_model(name)) == 125_642 + 5_760 * reuses


def test_every_lrunet_1x_is_covered():
    assert list_models("lrunet-*-1x") == ["lrunet-1-1x", "lrunet-10-1x", "lrunet-14-1x", "lrunet-4-1x", "lrunet-8-1x"]


# ---------------------------------------------------------------- registry


def test_duplicate_registration_raises():
    before = get_spec("resnet-20")
    with pytest.raises(ValueError, match="already registered under the name 'resnet-20'"):
        register_model("resnet-20", "resnet", CifarResNet, depth=56)
    assert get_spec("resnet-20") is before
    assert count_params(create_model("resnet-20")) == 272_474


@pytest.mark.parametrize("typo,suggestion", [("lrunet-14-1", "lrunet-14-1x"), ("resnet20", "resnet-20"), ("shiftresnet-20-e4", "shiftresnet-20-e3")])
def test_unknown_name_suggests_close_matches(typo, suggestion):
    with pytest.raises(UnknownModelError) as err:
        create_model(typo)
    assert suggestion in err.value.suggestions
    assert err.value.name == typo
    assert f"unknown model '{typo}'" in str(err.value) and suggestion in str(err.value)
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownModelError):
        edgelight.create_model(typo)


def test_unknown_name_without_close_matches():
    with pytest.raises(UnknownModelError) as err:
        get_spec("zzzzzzzzzzzz")
    assert err.value.suggestions == [] and "Did you mean" not in str(err.value)


def test_top_level_api():
    assert edgelight.list_models() == MODELS
    assert edgelight.list_models("lrunet-*-2x") == list_models("lrunet-*-2x") and len(list_models("lrunet-*-2x")) == 5
    assert edgelight.list_models("no-such-*") == []
    model = edgelight.create_model("lrunet-4-1x", num_classes=5, drop=0.0)
    assert isinstance(model, LruNet)
    assert model.model_name == "lrunet-4-1x" and model.default_input_size == 32
    assert model.model_args == {"drop": 0.0, "num_classes": 5, "in_chans": 3}
    assert model.head[3].p == 0.0 and model.head[4].out_channels == 5


def test_default_input_sizes():
    for name in MODELS:
        imagenet = re.fullmatch(r"mobilenetv[12]-\d{3}", name) is not None
        assert get_spec(name).input_size == (224 if imagenet else 32), name
    assert create_model("mobilenetv1-050").default_input_size == 224 and create_model("mobilenetv2-cifar-050").default_input_size == 32


def test_import_edgelight_does_not_import_torch():
    root = Path(__file__).resolve().parents[1]
    code = "import edgelight, sys; assert 'torch' not in sys.modules, 'torch was imported'; print(edgelight.__version__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == edgelight.__version__


# ---------------------------------------------------------------- LruNet weight sharing


@pytest.mark.parametrize("name", list_models("lrunet-*"))
def test_lrunet_shares_convs_across_reuses(name):
    reuses, width = int(name.split("-")[1]), int(name.split("-")[2][0])
    model = create_model(name)
    for stage, planes in zip(model.stages, (64, 128, 256, 512)):
        convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
        assert convs == [stage.dw, stage.pw]  # one depthwise and one pointwise conv, whatever N is
        assert stage.dw.in_channels == planes * width and stage.dw.out_channels == 2 * planes * width
        assert stage.dw.groups == planes * width and stage.pw.groups == 8
        assert len(stage.dw_bn) == len(stage.pw_bn) == reuses  # one BN pair per reuse
        assert len({id(bn) for bn in [*stage.dw_bn, *stage.pw_bn]}) == 2 * reuses
    base = create_model(f"lrunet-1-{width}x")
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == sum(isinstance(m, nn.Conv2d) for m in base.modules())
    bn_per_reuse = sum(2 * (2 * p) + 2 * p for p in (64 * width, 128 * width, 256 * width, 512 * width))
    assert count_params(model) - count_params(base) == (reuses - 1) * bn_per_reuse


def test_lrunet_applies_each_shared_conv_n_times():
    model = create_model("lrunet-4-1x").eval()
    calls = {"dw": 0, "pw": 0, "shuffle": 0}
    hooks = [model.stages[1].dw.register_forward_hook(lambda *_: calls.__setitem__("dw", calls["dw"] + 1))]
    hooks.append(model.stages[1].pw.register_forward_hook(lambda *_: calls.__setitem__("pw", calls["pw"] + 1)))
    hooks.append(model.stages[1].shuffle.register_forward_hook(lambda *_: calls.__setitem__("shuffle", calls["shuffle"] + 1)))
    assert isinstance(model.stages[1].shuffle, LruShuffle)
    with torch.no_grad():
        model(images(1, 3, 32))
    for h in hooks:
        h.remove()
    assert calls == {"dw": 4, "pw": 4, "shuffle": 3}


def test_lrunet_rejects_other_widths():
    with pytest.raises(ValueError, match="width must be 1 or 2"):
        LruNet(reuses=1, width=3)


# ---------------------------------------------------------------- RPG


RPG_OTHERS = 16_458  # stem conv, BatchNorms and classifier of the CIFAR ResNet-18 at 10 classes


def test_rpg_ring_is_one_parameter():
    model = create_model("rpg-resnet18")
    rings = [(n, p) for n, p in model.named_parameters() if n.startswith("ring")]
    assert [n for n, _ in rings] == ["ring.weight"]
    assert rings[0][1].numel() == ONE_CONV_LAYER == 512 * 512 * 3 * 3
    assert count_params(model) == ONE_CONV_LAYER + RPG_OTHERS
    # the residual-stage convs hold no weights of their own
    ring_convs = [m for m in model.modules() if isinstance(m, RingConv2d)]
    assert len(ring_convs) == 19 and all(not list(m.parameters(recurse=False)) for m in ring_convs)
    assert [m for m in model.modules() if isinstance(m, nn.Conv2d)] == [model.stem[0]]
    assert "ring.index" not in model.state_dict() and "ring.sign" not in model.state_dict()


@pytest.mark.parametrize("ring_size", [10_000, 123_457])
def test_rpg_ring_size(ring_size):
    model = create_model("rpg-resnet18", ring_size=ring_size)
    assert model.ring.weight.shape == (ring_size,)
    assert count_params(model) == ring_size + RPG_OTHERS
    # every ring entry is used equally often (+-1)
    uses = torch.bincount(model.ring.index, minlength=ring_size)
    assert uses.max() - uses.min() <= 1
    assert set(model.ring.sign.unique().tolist()) == {-1.0, 1.0}


def test_rpg_materialize_matches():
    model = build("rpg-resnet18", ring_size=50_000).eval()
    plain = model.materialize()
    assert not plain.training
    assert not any(isinstance(m, (RingConv2d, ParameterRing)) for m in plain.modules())
    generated = sum(math.prod(shape) for shape in model.ring.shapes)
    assert count_params(plain) == RPG_OTHERS + generated > 11_000_000  # a full ResNet-18's worth of conv weights
    torch.testing.assert_close(plain.layers[3].conv2.weight, model.layers[3].conv2.weight, rtol=0, atol=0)
    x = images(2, 3, 32, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-5)
    assert model.train().materialize().training


def test_rpg_checkpoint_needs_only_the_ring():
    a = build("rpg-resnet18", seed=0, ring_size=20_000).eval()
    b = create_model("rpg-resnet18", ring_size=20_000).eval()  # same generator seed, other random ring
    x = images(2, 3, 32, seed=4)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))
        b.load_state_dict(a.state_dict(), strict=True)
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=0)
