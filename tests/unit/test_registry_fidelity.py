"""Fidelity of the registry to its sources: exact parameter counts, distinct networks, sourced numbers, claims whose
deltas are the differences of the rows they cite, the registry's refusals, and the meta-device tracer."""

import re
from dataclasses import replace
from types import ModuleType

import pytest
import torch
from torch import nn

import variants
from variants import krizhevsky2012, krizhevsky2012_fig1, krizhevsky2014, registry, torchvision_ref, zeiler2013
from variants.convnet import GroupedLinear, count_macs, feature_sizes, trace
from variants.types import Claim, Reported, Variant

ALL = variants.list_variants()
IDS = [v.name for v in ALL]
ROWS = [(v.name, r) for v in ALL for r in v.reported]
CLAIMS = variants.claims()


def meta(v: Variant, num_classes: int = 1000) -> nn.Module:
    with torch.device("meta"):
        return v.build(num_classes)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Every count the variants, the issue or the report state, with where it comes from.
PARAMS = {
    "alexnet2012": 60_965_224,  # CAFFE bvlc_alexnet; CHM layers-145.cfg by hand
    "alexnet2012_conv6": 61_555_304,  # conv6 dense (CHM layers-146-2012-2011.cfg `[conv6a] inputs=pool3a,pool3b`)
    "alexnet2012_no_conv2": 60_104_808,  # the ablation wiring rule (variants.convnet.remove_convs)
    "alexnet2012_no_conv3": 59_858_920,
    "alexnet2012_no_conv4": 60_301_288,
    "alexnet2012_no_conv5": 79_396_968,  # fc6 reads 384 x 6 x 6 = 13,824
    "alexnet2012_no_conv3_conv4": 59_268_712,
    "alexnet2012_one_tower_half": 59_798_312,
    "alexnet2012_no_tower_exchange": 60_714_408,  # CHM layers-150.cfg
    "alexnet2014": 61_100_840,
    "torchvision_alexnet": 61_100_840,
    "zfnet": 62_357_608,
    "zfnet_wide": 107_627_624,
    "zf13_alexnet_replication": 62_378_344,
    "zf13_alexnet_replication_no_conv3_conv4": 59_870_824,
    "zf13_alexnet_replication_no_fc7": 45_597_032,
    "zf13_alexnet_replication_no_fc6_fc7": 12_964_200,
    "zf13_alexnet_replication_no_conv3_conv4_fc6_fc7": 10_456_680,
    "zf13_alexnet_replication_fc2048": 28_868_968,
}


@pytest.mark.parametrize(("name", "params"), PARAMS.items(), ids=list(PARAMS))
def test_exact_parameter_count(name: str, params: int) -> None:
    v = variants.get_variant(name)
    assert n_params(meta(v)) == params
    assert v.reported_params == params


def test_every_declared_count_is_in_the_table_above() -> None:
    declared = {v.name: v.reported_params for v in ALL if v.reported_params is not None}
    assert declared == {k: PARAMS[k] for k in declared}
    assert set(PARAMS) <= set(IDS)


def test_meta_and_real_builds_agree() -> None:
    """Counting on the meta device gives what a real build gives (params and MACs)."""
    for name in ("alexnet2012", "alexnet2012_no_tower_exchange", "torchvision_alexnet", "zfnet"):
        v = variants.get_variant(name)
        real, fake = v.build(1000), meta(v)
        assert n_params(real) == n_params(fake)
        assert count_macs(real, v.input_size) == count_macs(fake, v.input_size)
        assert feature_sizes(real, v.input_size) == feature_sizes(fake, v.input_size)
        assert all(p.device.type == "meta" for p in fake.parameters())


def test_trace_lists_leaves_in_forward_order_with_shapes() -> None:
    t = trace(meta(variants.get_variant("alexnet2012")), 224)
    names = [x.name for x in t]
    assert names[:5] == ["features.pad1", "features.conv1", "features.relu1", "features.norm1", "features.pool1"]
    shapes = {x.name: x.shape for x in t}
    assert shapes["features.conv1"] == (96, 55, 55) and shapes["features.pool5"] == (256, 6, 6)
    assert shapes["classifier.fc6"] == (4096,) and shapes["classifier.fc8"] == (1000,)
    assert round(sum(x.module.weight.numel() for x in t if hasattr(x.module, "weight")) / 1e6) == 61


def test_torchvision_macs_on_meta_match_its_metadata() -> None:
    v = variants.get_variant("torchvision_alexnet")
    assert round(count_macs(meta(v), 224) / 1e9, 3) == v.reported_macs == 0.714


def _signature(v: Variant) -> tuple:
    arch = tuple((t.name, repr(t.module), t.shape) for t in trace(meta(v), v.input_size))
    return arch, v.recipe


def test_no_two_variants_are_the_same_experiment() -> None:
    """No two registered variants build the same network (modules and shapes) with the same recipe."""
    seen: dict[tuple, str] = {}
    for v in ALL:
        sig = _signature(v)
        assert sig not in seen, f"{v.name} is the same network and recipe as {seen[sig]}"
        seen[sig] = v.name


# --- the networks against their sources ---------------------------------------------------------------------


def test_removed_conv_keeps_its_pool_in_place() -> None:
    sizes = feature_sizes(meta(variants.get_variant("alexnet2012_no_conv2")), 224)
    assert sizes == {"conv1": 55, "pool1": 27, "pool2": 13, "conv3": 13, "conv4": 13, "conv5": 13, "pool5": 6}
    model = meta(variants.get_variant("alexnet2012_no_conv2"))
    assert model.features.conv3.in_channels == 96 and model.features.conv3.groups == 1


def test_no_conv4_and_no_conv5_are_different_networks() -> None:
    a = meta(variants.get_variant("alexnet2012_no_conv4"))
    b = meta(variants.get_variant("alexnet2012_no_conv5"))
    assert (a.features.conv5.in_channels, a.classifier.fc6.in_features) == (384, 9216)
    assert (b.features.conv4.out_channels, b.classifier.fc6.in_features) == (384, 13_824)
    assert not hasattr(b.features, "conv5") and hasattr(b.features, "pool5")


def test_conv6_is_dense() -> None:
    conv6 = meta(variants.get_variant("alexnet2012_conv6")).features.conv6
    assert (conv6.in_channels, conv6.out_channels, conv6.groups, conv6.kernel_size) == (256, 256, 1, (3, 3))
    assert not any("groups=2" in d and "conv6" in d for d in variants.get_variant("alexnet2012_conv6").deviations)


def test_zf_replication_is_dense_and_carries_its_own_rows() -> None:
    model = meta(variants.get_variant("zf13_alexnet_replication"))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1] * 5 and [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    rep = variants.get_variant("zf13_alexnet_replication")
    assert rep.recipe == variants.get_variant("zfnet").recipe  # ZF13 s3's recipe
    assert [(r.top1, r.top5, r.source) for r in rep.reported] == [(59.5, 81.9, "ZF13 Table 2")]
    for v in ALL:
        if v.ablation_of == "zf13_alexnet_replication":
            assert v.name.startswith("zf13_alexnet_replication_") and v.paper == "ZF13"
    assert variants.get_variant("zfnet_wide").ablation_of == "zfnet"
    # no ZF13 number is a target of the KSH12 two-tower nets any more
    for v in ALL:
        if v.paper == "KSH12":
            assert not any(r.source.startswith("ZF13") for r in v.reported), v.name


def test_no_tower_exchange_follows_run_150() -> None:
    """CHM layers-150.cfg: conv2 2 x 160 maps, conv3 and the hidden fc layers per tower, fc8 reads both towers."""
    m = meta(variants.get_variant("alexnet2012_no_tower_exchange"))
    f, c = m.features, m.classifier
    assert [(x.out_channels, x.groups) for x in (f.conv1, f.conv2, f.conv3, f.conv4, f.conv5)] == [
        (96, 1),
        (320, 2),
        (384, 2),
        (384, 2),
        (256, 2),
    ]
    assert isinstance(c.fc6, GroupedLinear) and (c.fc6.in_features, c.fc6.out_features, c.fc6.groups) == (9216, 8192, 2)
    assert isinstance(c.fc7, GroupedLinear) and (c.fc7.in_features, c.fc7.out_features, c.fc7.groups) == (8192, 4096, 2)
    assert type(c.fc8) is nn.Linear and c.fc8.in_features == 4096


def test_grouped_linear_is_a_block_diagonal_linear() -> None:
    torch.manual_seed(0)
    g = GroupedLinear(6, 4, 2)
    dense = nn.Linear(6, 4)
    with torch.no_grad():
        dense.weight.zero_()
        dense.weight[:2, :3] = g.weight[:2]
        dense.weight[2:, 3:] = g.weight[2:]
        dense.bias.copy_(g.bias)
    x = torch.randn(5, 6)
    torch.testing.assert_close(g(x), dense(x))
    assert g.weight[0].numel() == 3  # fan-in of one block, as init_weights reads it
    with pytest.raises(ValueError, match="groups"):
        GroupedLinear(7, 4, 2)


def test_cc2_conv1_normalises_before_the_relu() -> None:
    """CC2 layers-imagenet-1gpu.cfg: conv1 (no neuron) -> rnorm1 -> pool1 with neuron=relu."""
    torch.manual_seed(0)
    model = variants.get_variant("alexnet2014").build(10).eval()
    f = model.features
    assert [n for n, _ in f.named_children()][:5] == ["pad1", "conv1", "norm1", "relu1", "pool1"]
    assert [n for n, _ in f.named_children()][5:8] == ["conv2", "relu2", "norm2"]  # conv2: neuron=relu, then rnorm2
    x = torch.randn(2, 3, 224, 224) * 50
    with torch.no_grad():
        code = torch.relu(f.pool1(f.norm1(f.conv1(f.pad1(x)))))  # the code's order: ReLU on pool1's output
        ours = f[:5](x)
    torch.testing.assert_close(ours, code)
    # the biases' own schedule, built: epsB=dexp[base=0.02;tgtFactor=10;numSteps=2] (layer-params-imagenet-1gpu.cfg)
    biases = variants.get_variant("alexnet2014").recipe.lr_table.group_of("conv1", "bias")
    assert biases.steps == ((1, 0.02), (46, 0.002)) and not biases.weight_decay


# --- reported numbers and claims -------------------------------------------------------------------------------

PAPER_KEYS = ("KSH12", "OWT14", "ZF13", "TV")
# paper: a table, section or figure; original code: a file; the one seed row says so.
SOURCE = re.compile(
    r"^((KSH12|OWT14|ZF13) (Table \d|s\d|Fig\. \d)"
    r"|(CHM|CC2|CAFFE) .*\w+\.(cfg|py|md)"
    r"|TV \S+"
    r"|seed table \(project brief\), attributed to OWT14)"
)


@pytest.mark.parametrize(("variant", "row"), ROWS, ids=[f"{n}:{r.source}:{r.protocol}:{r.ensemble}" for n, r in ROWS])
def test_every_reported_row_names_its_source(variant: str, row: Reported) -> None:
    assert row.source.strip() and SOURCE.match(row.source), row.source


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.name for c in CLAIMS])
def test_every_claim_names_its_source(claim: Claim) -> None:
    assert claim.source.strip() and SOURCE.match(claim.source), claim.source
    names = set(IDS)
    assert claim.variant in names and claim.baseline in names
    if claim.kind == "equivalence":
        assert claim.delta > 0
    if claim.kind == "direction":  # a sign without a size: -1 or +1 by convention
        assert abs(claim.delta) == 1
    if claim.ensemble > 1 or claim.protocol:
        assert claim.variant == claim.baseline


def test_source_rule_rejects_unsourced_rows() -> None:
    for bad in ("", "seed table", "CHM lab notes", "CC2 wiki", "KSH12", "ZF13 ablations"):
        assert not SOURCE.match(bad), bad


def test_claim_names_are_unique() -> None:
    assert len({c.name for c in CLAIMS}) == len(CLAIMS)


def _row(name: str, source: str | None = None, ensemble: int = 1, split: str = "val") -> Reported:
    [r] = [
        r
        for r in variants.get_variant(name).reported
        if r.ensemble == ensemble
        and r.split == split
        and (source is None or r.source == source)
        and r.dataset == "ILSVRC-2012"
        and r.protocol == "ten_crop"
    ]
    return r


@pytest.mark.parametrize("claim", [c for c in zeiler2013.CLAIMS if c.kind == "difference"], ids=lambda c: c.name)
def test_zf_claim_deltas_are_the_table_differences(claim: Claim) -> None:
    a, b = _row(claim.variant), _row(claim.baseline)
    assert claim.delta == pytest.approx(getattr(a, claim.metric) - getattr(b, claim.metric), abs=1e-9)


def test_zf_no_fc7_is_an_equivalence_the_table_satisfies() -> None:
    for c in (c for c in zeiler2013.CLAIMS if c.name.startswith("zf_no_fc7")):
        a, b = _row(c.variant), _row(c.baseline)
        assert c.kind == "equivalence" and c.delta == 1.0
        assert abs(getattr(a, c.metric) - getattr(b, c.metric)) <= c.delta


def test_ensemble_claims_are_table_2_differences() -> None:
    one, five = _row("alexnet2012", "KSH12 Table 2"), _row("alexnet2012", "KSH12 Table 2", ensemble=5)
    by_name = {c.name: c for c in CLAIMS}
    for name, metric in (("ensemble5", "top1"), ("ensemble5_top5", "top5")):
        c = by_name[name]
        assert c.ensemble == 5 and c.metric == metric
        assert c.delta == pytest.approx(getattr(five, metric) - getattr(one, metric), abs=1e-9)


def test_claim_kinds_and_values() -> None:
    by_name = {c.name: c for c in CLAIMS}
    assert (by_name["pca_lighting"].kind, by_name["pca_lighting"].delta) == ("at_least", -1.0)
    assert [(by_name[n].metric, by_name[n].delta) for n in ("lrn_top5", "overlap_pool_top5", "two_towers_top5")] == [
        ("top5", -1.2),
        ("top5", -0.3),
        ("top5", -1.2),
    ]
    assert (by_name["tower_exchange"].delta, by_name["tower_exchange_top5"].delta) == (-1.16, -1.12)
    assert (by_name["ten_crop"].delta, by_name["ten_crop_top5"].delta) == (1.55, 1.30)
    assert (by_name["ten_crop_cc2"].delta, by_name["ten_crop_cc2_top5"].delta) == (2.13, 1.66)
    # KSH12 s7's "removing any of the middle layers" is conv2-conv4; conv5 is a labelled extra without a claim
    s7 = {c.variant for c in CLAIMS if c.source == "KSH12 s7"}
    assert s7 == {"alexnet2012_no_conv2", "alexnet2012_no_conv3", "alexnet2012_no_conv4"}
    assert not [c for c in CLAIMS if "alexnet2012_no_conv5" in (c.variant, c.baseline)]
    assert variants.get_variant("alexnet2012_no_conv5").summary.startswith("Extra, not a KSH12 claim")


def test_direction_claims_are_ksh12_s4_overfitting_statements() -> None:
    """KSH12 s4.1 and s4.2 give no number for the nets without augmentation or dropout: top-1, direction only."""
    by_name = {c.name: c for c in CLAIMS}
    got = {n: (by_name[n].variant, by_name[n].baseline, by_name[n].source) for n in ("dropout", "augmentation")}
    assert got == {
        "dropout": ("alexnet2012_no_dropout", "alexnet2012", "KSH12 s4.2"),
        "augmentation": ("alexnet2012_no_augmentation", "alexnet2012", "KSH12 s4.1"),
    }
    assert {(c.kind, c.delta, c.metric) for c in (by_name["dropout"], by_name["augmentation"])} == {
        ("direction", -1.0, "top1")
    }


def test_rows_added_from_the_sources() -> None:
    rows = {(n, r.dataset, r.split, r.protocol, r.top1, r.top5, r.ensemble, r.reference_only) for n, r in ROWS}
    for expected in [
        ("alexnet2012", "ILSVRC-2010", "test", "center", 60.98, 81.70, 1, False),  # CHM layer-params-145-2010.cfg
        ("alexnet2012_no_tower_exchange", "ILSVRC-2012", "val", "ten_crop", 58.17, 80.67, 1, False),  # #150
        ("zf13_alexnet_replication", "ILSVRC-2012", "val", "ten_crop", 59.5, 81.9, 1, False),
        ("zf13_alexnet_replication_no_conv3_conv4", "ILSVRC-2012", "val", "ten_crop", 54.6, 77.9, 1, False),
        ("zf13_alexnet_replication_no_fc7", "ILSVRC-2012", "val", "ten_crop", 60.0, 81.6, 1, False),
        ("zf13_alexnet_replication_no_fc6_fc7", "ILSVRC-2012", "val", "ten_crop", 55.2, 77.6, 1, False),
        ("zf13_alexnet_replication_no_conv3_conv4_fc6_fc7", "ILSVRC-2012", "val", "ten_crop", 28.7, 49.9, 1, False),
        ("zf13_alexnet_replication_fc2048", "ILSVRC-2012", "val", "ten_crop", 58.3, 81.2, 1, False),
        ("zfnet", "ILSVRC-2012", "val", "ten_crop", 63.3, 84.7, 5, False),  # ZF13 Table 2 (a)
        ("zfnet", "ILSVRC-2012", "test", "ten_crop", None, 84.7, 5, False),
        ("zfnet", "ILSVRC-2012", "val", "ten_crop", 64.0, 85.3, 6, True),  # (a) & (b): a mixed ensemble
        ("zfnet_wide", "ILSVRC-2012", "test", "ten_crop", None, 83.9, 1, False),
        ("alexnet2012", "ILSVRC-2012", "val", "center", 57.1, 80.2, 1, True),  # Caffe bvlc_alexnet
        ("alexnet2012", "ILSVRC-2012", "val", "center", 57.4, 80.4, 1, True),  # CaffeNet
    ]:
        assert expected in rows, expected
    # KSH12 Table 2 prints '-' for one CNN's test top-5: no such row
    assert not [
        r
        for n, r in ROWS
        if n == "alexnet2012" and r.dataset == "ILSVRC-2012" and r.split == "test" and r.ensemble == 1
    ]


def test_reference_only_rows_are_other_networks_or_recipes() -> None:
    ref = {(n, r.source) for n, r in ROWS if r.reference_only}
    assert ref == {
        ("alexnet2012", "CAFFE models/bvlc_alexnet/readme.md"),
        ("alexnet2012", "CAFFE models/bvlc_reference_caffenet/readme.md"),
        ("zfnet", "ZF13 Table 2"),
        ("ksh12_fig1_relu", "CHM example-layers/layers-80sec.cfg l.1"),  # the example's recipe, not Fig. 1's
    }


def test_training_setup_fields_default_to_unknown() -> None:
    r = Reported("ILSVRC-2012", "val", "center", 50.0, None, "KSH12 Table 2")
    assert (r.gpus, r.batch_size, r.fc_batch_size, r.train_hours) == (None, None, None, None)
    cc2 = [r for r in variants.get_variant("alexnet2014").reported if r.source.startswith("CC2")]
    assert {(r.gpus, r.batch_size) for r in cc2} == {(1, 128)}


# --- the registry ----------------------------------------------------------------------------------------------

MODULES: tuple[ModuleType, ...] = (krizhevsky2012, krizhevsky2012_fig1, krizhevsky2014, torchvision_ref, zeiler2013)


def test_each_paper_module_exports_paper_variants_and_claims() -> None:
    assert registry.MODULES == MODULES
    for m in MODULES:
        assert isinstance(m.VARIANTS, tuple) and isinstance(m.CLAIMS, tuple)
        assert {v.paper for v in m.VARIANTS} == {m.PAPER.key}
    assert variants.PAPERS == {m.PAPER.key: m.PAPER.citation for m in MODULES}
    assert set(variants.PAPERS) == set(PAPER_KEYS)
    assert [v.name for v in ALL] == [v.name for m in MODULES for v in m.VARIANTS]
    assert CLAIMS == [c for m in MODULES for c in m.CLAIMS]
    assert any(c.variant.startswith("zf13_") for c in CLAIMS)  # not only KSH12's claims


def _probe(**kw: object) -> Variant:
    base = variants.get_variant("torchvision_alexnet")
    return replace(base, name="probe_for_test", reported=(), **kw)


def test_register_refuses_an_unknown_paper() -> None:
    with pytest.raises(ValueError, match=r"'probe_for_test' names unknown paper 'XY99'; known papers: KSH12"):
        variants.register(_probe(paper="XY99"))
    assert "probe_for_test" not in IDS and "probe_for_test" not in registry._REGISTRY


def test_register_refuses_an_ablation_of_an_unregistered_variant() -> None:
    with pytest.raises(ValueError, match=r"ablation of 'alexnet2099', which is not registered"):
        variants.register(_probe(ablation_of="alexnet2099"))
    assert "probe_for_test" not in registry._REGISTRY


def test_docstrings_cite_nothing_outside_the_repository() -> None:
    for m in (*MODULES, registry, variants.types, variants.convnet):
        text = open(m.__file__).read()
        assert "paper-facts" not in text and "shared/reference" not in text, m.__name__
