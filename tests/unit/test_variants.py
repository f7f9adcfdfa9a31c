"""The registry as a specification: parametrised over every registered variant, so a new one is tested unedited."""

import json
import subprocess

import pytest
import torch
import torch.nn as nn
import torchvision

import variants
from harness import catalog
from tests.support import harness_in_process
from variants.convnet import feature_sizes, init_weights, renorm_filters
from variants.types import Reported, Variant

ALL = variants.list_variants()
IDS = [v.name for v in ALL]
REQUIRED = {
    "alexnet2012",
    "alexnet2012_conv6",
    "alexnet2014",
    "torchvision_alexnet",
    "zfnet",
    "zfnet_wide",
    "alexnet2012_no_conv2",
    "alexnet2012_no_conv3",
    "alexnet2012_no_conv4",
    "alexnet2012_no_conv5",
    "alexnet2012_no_conv3_conv4",
    "alexnet2012_no_lrn",
    "alexnet2012_nonoverlap_pool",
    "alexnet2012_one_tower_half",
    "alexnet2012_no_tower_exchange",
    "zf13_alexnet_replication",
    "zf13_alexnet_replication_no_conv3_conv4",
    "zf13_alexnet_replication_no_fc7",
    "zf13_alexnet_replication_no_fc6_fc7",
    "zf13_alexnet_replication_no_conv3_conv4_fc6_fc7",
    "zf13_alexnet_replication_fc2048",
}


def test_required_names_are_registered():
    assert REQUIRED <= set(IDS)


def test_duplicate_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        variants.register(variants.get_variant("alexnet2012"))


def test_unknown_name_suggests_closest():
    with pytest.raises(variants.UnknownVariantError) as e:
        variants.get_variant("alexnet2013")
    assert "alexnet2012" in e.value.suggestions


@pytest.mark.parametrize("variant", ALL, ids=IDS)
@pytest.mark.parametrize("which", ["native", "smallest"])
def test_builds_and_runs_forward(variant: Variant, which: str):
    size = variant.input_size if which == "native" else variant.min_input_size
    torch.manual_seed(0)
    model = variant.build(10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("variant", [v for v in ALL if v.reported_params], ids=lambda v: v.name)
def test_parameter_count_matches_reported(variant: Variant):
    assert catalog.measure(variant).params == variant.reported_params


def test_reported_parameter_counts_present():
    counts = {v.name: v.reported_params for v in ALL}
    assert counts["torchvision_alexnet"] == 61_100_840
    assert counts["alexnet2012"] == 60_965_224
    assert counts["alexnet2012_conv6"] == 61_555_304  # conv6 is dense, like conv3 (CHM layers-146-2012-2011.cfg)
    assert counts["zfnet"] == 62_357_608


def test_torchvision_variant_matches_its_weights_metadata():
    """Every torchvision figure the registry carries, against torchvision's own IMAGENET1K_V1 metadata."""
    meta = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta
    v = variants.get_variant("torchvision_alexnet")
    m = catalog.measure(v)
    assert m.params == v.reported_params == meta["num_params"]
    assert round(m.macs / 1e9, 3) == v.reported_macs == meta["_ops"]
    assert v.reported_size_mb == meta["_file_size"] and abs(m.size_mb - meta["_file_size"]) < 0.05
    assert (v.min_input_size, v.min_input_size) == meta["min_size"]
    (row,) = v.reported
    assert (row.top1, row.top5) == (meta["_metrics"]["ImageNet-1K"]["acc@1"], meta["_metrics"]["ImageNet-1K"]["acc@5"])


@pytest.mark.parametrize(
    "name, expected",
    [
        ("alexnet2012", {"conv1": 55, "pool1": 27, "pool2": 13, "conv5": 13, "pool5": 6}),
        ("zfnet", {"conv1": 110, "pool1": 55, "conv2": 26, "pool2": 13, "pool5": 6}),
    ],
)
def test_feature_map_sizes(name, expected):
    sizes = feature_sizes(variants.get_variant(name).build(1000), 224)
    assert {k: sizes[k] for k in expected} == expected


@pytest.mark.parametrize(
    "name, params, fc6_in",
    [
        ("alexnet2012_no_conv2", 60_104_808, 9216),
        ("alexnet2012_no_conv3", 59_858_920, 9216),
        ("alexnet2012_no_conv4", 60_301_288, 9216),
        ("alexnet2012_no_conv5", 79_396_968, 13_824),  # pool5 acts on conv4's 384 maps: fc6 reads 384 x 6 x 6
        ("alexnet2012_no_conv3_conv4", 59_268_712, 9216),
    ],
)
def test_ablation_wiring_rule(name, params, fc6_in):
    """Remove the conv layer with its ReLU and LRN; its pooling stays; the next layer's inputs follow."""
    v = variants.get_variant(name)
    assert v.ablation_of == "alexnet2012"
    assert catalog.measure(v).params == params
    assert any("wiring" in d for d in v.deviations)
    model = v.build(1000)
    assert model.classifier.fc6.in_features == fc6_in
    removed = name.removeprefix("alexnet2012_no_").split("_")
    names = dict(model.features.named_children())
    for conv in removed:
        i = conv.removeprefix("conv")
        assert not {conv, f"relu{i}", f"norm{i}"} & set(names), conv
        assert (f"pool{i}" in names) == (i in ("2", "5")), conv  # the pools of conv2 and conv5 stay


def _lrn_direct(a: torch.Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75):
    """b_i = a_i / (k + alpha/n * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta, the 2012 code's convention."""
    N = a.shape[1]
    out = torch.empty_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)
        s = (a[:, lo : hi + 1] ** 2).sum(dim=1)
        out[:, i] = a[:, i] / (k + alpha / n * s) ** beta
    return out


# towers: how many slices of the maps each normalise on their own (CHM layers/layers-145.cfg: rnorm1a reads conv1a)
@pytest.mark.parametrize("name,towers", [("alexnet2012", 2), ("alexnet2014", 1), ("zfnet", 1)])
def test_lrn_matches_formula(name, towers):
    model = variants.get_variant(name).build(10)
    lrn = model.features.norm1
    torch.manual_seed(0)
    a = torch.randn(2, 16, 7, 7) * 30  # large enough that the sum term matters
    want = torch.cat([_lrn_direct(t) for t in a.chunk(towers, 1)], 1)
    torch.testing.assert_close(lrn(a), want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(lrn(a), a / 2**0.75)


@pytest.mark.parametrize("variant", [v for v in ALL if v.recipe.init.default_std is not None], ids=lambda v: v.name)
def test_init_scheme(variant: Variant):
    torch.manual_seed(0)
    model = variant.build(1000)
    init_weights(model, variant.recipe.init)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            layer = name.rsplit(".", 1)[-1]
            std, bias = variant.recipe.init.for_layer(layer)
            assert module.weight.std().item() == pytest.approx(std, rel=0.05), layer
            assert torch.all(module.bias == bias), layer


def test_ksh12_bias_one_layers():
    init = variants.get_variant("alexnet2012").recipe.init
    assert {
        layer
        for layer in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
        if init.for_layer(layer)[1] == 1.0
    } == {"conv2", "conv4", "conv5", "fc6", "fc7"}


def test_filter_renorm_caps_rms():
    model = variants.get_variant("zfnet").build(10)
    with torch.no_grad():
        model.features.conv1.weight.mul_(100)
        model.features.conv1.weight[:3] *= 1e-4  # three filters back under the limit: left exactly as they are
    before = model.features.conv1.weight.clone()
    renorm_filters(model, 0.1)
    rms = model.features.conv1.weight.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert torch.all(rms[3:] - 0.1 < 1e-6) and torch.all(rms[3:] > 0.1 - 1e-6)  # capped to exactly rms_max
    assert torch.equal(model.features.conv1.weight[:3], before[:3])


def test_torchvision_variant_equals_torchvision_model():
    ours = variants.get_variant("torchvision_alexnet").build(1000).eval()
    ref = torchvision.models.alexnet(weights=None).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))
    assert type(ours) is type(ref)


@pytest.mark.parametrize("variant", ALL, ids=IDS)
def test_reported_rows_are_percentages(variant: Variant):
    for r in variant.reported:
        assert isinstance(r, Reported)
        for v in (r.top1, r.top5):
            assert v is None or 0 < v < 100
        assert r.protocol in ("center", "ten_crop")


def test_seed_table_rows_are_attached():
    rows = {(v.name, r.dataset, r.split, r.top1, r.top5, r.ensemble) for v in ALL for r in v.reported}
    for expected in [
        ("alexnet2012_conv6", "ImageNet Fall 2009", "test", 32.6, 59.1, 1),
        ("alexnet2012", "ILSVRC-2010", "test", 62.5, 83.0, 1),
        ("alexnet2012", "ILSVRC-2012", "val", 59.3, 81.8, 1),
        ("alexnet2012", "ILSVRC-2012", "val", 61.9, 83.6, 5),
        ("alexnet2012_conv6", "ILSVRC-2012", "val", 61.0, 83.4, 1),
        ("alexnet2012_conv6", "ILSVRC-2012", "val", 63.3, 84.6, 7),
        ("alexnet2014", "ILSVRC-2012", "val", 57.73, None, 1),
        ("torchvision_alexnet", "ILSVRC-2012", "val", 56.522, 79.066, 1),
        ("zfnet", "ILSVRC-2012", "val", 61.6, 83.5, 1),
    ]:
        assert expected in rows, expected


def test_claims_refer_to_registered_variants():
    names = set(IDS)
    for c in variants.claims():
        assert c.variant in names and c.baseline in names


def _cli(*args: str) -> subprocess.CompletedProcess:
    """`harness ARGS` in this process, answered as a finished process would be."""
    code, out, err = harness_in_process(list(args))
    return subprocess.CompletedProcess(list(args), code, out, err)


def test_cli_list_json():
    r = _cli("list", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [d["name"] for d in data] == IDS
    for d in data:
        assert {"name", "paper", "params", "macs", "reported_params", "ablation_of", "reported"} <= set(d)
        for row in d["reported"]:
            assert {"dataset", "split", "protocol", "top1", "top5", "source"} <= set(row)
    tv = next(d for d in data if d["name"] == "torchvision_alexnet")
    assert tv["params"] == 61_100_840 and tv["params_match"] is True


def test_cli_list_table_and_show():
    r = _cli("list")
    assert r.returncode == 0 and "alexnet2012_no_lrn" in r.stdout and "60,965,224" in r.stdout
    r = _cli("show", "zfnet")
    assert r.returncode == 0
    for needle in ("110x110", "Recipe:", "filter_rms_max", "Deviations", "python -m harness run zfnet"):
        assert needle in r.stdout, needle


def test_cli_unknown_name_is_one_line_exit_2():
    r = _cli("show", "alexnet2013")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "alexnet2012" in r.stderr
    assert "Traceback" not in r.stderr


def test_he_init_scales_with_each_layers_fan_in():
    """He et al. 2015: std sqrt(2 / fan_in), fan-in counting a grouped conv's inputs per group."""
    scheme = variants.InitScheme("he", fan_in_gain=2**0.5)
    torch.manual_seed(0)
    model = variants.get_variant("alexnet2012").build(10)
    init_weights(model, scheme)
    convs = dict(model.named_modules())
    conv2 = next(m for n, m in convs.items() if n.endswith("conv2"))
    fc6 = next(m for n, m in convs.items() if n.endswith("fc6"))
    assert conv2.groups == 2 and conv2.weight[0].numel() == 48 * 5 * 5  # two towers: 48 input maps each
    assert conv2.weight.std().item() == pytest.approx((2 / (48 * 25)) ** 0.5, rel=0.03)
    assert fc6.weight.std().item() == pytest.approx((2 / 9216) ** 0.5, rel=0.03)
    assert torch.all(fc6.bias == 0)
    with pytest.raises(ValueError, match="fan-in"):
        scheme.for_layer("fc6")
    # the proxy's scheme keeps the papers' std 0.01 on the output layer, whatever the builder calls it
    from harness.profiles import HE_INIT

    for name in ("alexnet2012", "torchvision_alexnet"):
        model = variants.get_variant(name).build(10)
        init_weights(model, HE_INIT)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        assert linears[-1].weight.std().item() == pytest.approx(0.01, rel=0.1), name
        assert linears[0].weight.std().item() == pytest.approx((2 / 9216) ** 0.5, rel=0.03), name


@pytest.mark.parametrize("beta", [0.75, 0.5])
@pytest.mark.parametrize("channels", [3, 24, 96])
def test_fast_lrn_computes_pytorchs_local_response_norm(beta, channels):
    from variants.convnet import FastLRN

    torch.manual_seed(0)
    x = (torch.randn(4, channels, 9, 9) * 5).requires_grad_()
    fast, ref = FastLRN(5, alpha=1e-4, beta=beta, k=2.0), torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=beta, k=2.0)
    y_fast, y_ref = fast(x), ref(x)
    (g_fast,) = torch.autograd.grad(y_fast.square().sum(), x)
    (g_ref,) = torch.autograd.grad(y_ref.square().sum(), x)
    assert torch.allclose(y_fast, y_ref, rtol=1e-5, atol=1e-5)
    assert torch.allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4 * g_ref.abs().max().item())
    # a different window or constant would not pass: the test can fail
    assert not torch.allclose(y_fast, torch.nn.LocalResponseNorm(3, alpha=1e-4, beta=beta, k=2.0)(x), atol=1e-3)
