"""The paper profile as the original code ran it: the 2012/2014 code's dropout arithmetic, per-tower LRN, and CHM run
#145's fixed learning-rate table (CHM = github.com/computerhistory/AlexNet-Source-Code, CC2 = akrizhevsky/
cuda-convnet2). The expected values below are transcribed from those files, with the line they were read from."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

import variants
from harness import catalog, engine
from harness.augment import TrainView
from harness.config import network_notes, parse_set, resolve, validate_recipe
from harness.errors import HarnessError
from harness.request import RunRequest
from harness.transforms import IMAGENET_PCA
from variants.convnet import FastLRN, ScaleAtTestDropout, TowerLRN

TWO_TOWER = ("alexnet2012", "alexnet2012_conv6", "alexnet2012_no_tower_exchange", "alexnet2012_nonoverlap_pool")
CODE_DROPOUT = ("alexnet2012", "alexnet2012_no_tower_exchange", "alexnet2014", "zfnet", "zf13_alexnet_replication")


# --- dropout: CHM src/layer.cu HiddenSexLayer::fpropActs l.1126-1135, CC2 layer.cu Dropout2Layer l.1374-1383 ------


def test_dropout_trains_on_input_times_mask_and_tests_at_half():
    x = torch.randn(64, 300) + 1.0
    drop = ScaleAtTestDropout(0.5).train()
    torch.manual_seed(7)
    y = drop(x)
    torch.manual_seed(7)
    mask = torch.rand_like(x) < 0.5  # the code: _sexMask.randomizeUniform(); smallerThanScalar(_keep)
    assert torch.equal(y, x * mask)  # eltwiseMult(_sexMask): kept units unscaled
    assert 0.4 < mask.float().mean().item() < 0.6
    assert torch.equal(drop.eval()(x), 0.5 * x)  # scale(_keep) at test
    # nn.Dropout, what the harness used before, differs in both: x 2 for kept units, the identity at test
    assert not torch.equal(nn.Dropout(0.5).eval()(x), 0.5 * x)
    torch.manual_seed(7)
    assert not torch.equal(nn.Dropout(0.5).train()(x), x * mask)


def test_dropout_gradient_is_the_mask_in_training_and_half_at_test():
    x = torch.randn(8, 50, requires_grad=True)
    drop = ScaleAtTestDropout(0.5).train()
    torch.manual_seed(3)
    drop(x).sum().backward()
    torch.manual_seed(3)
    assert torch.equal(x.grad, (torch.rand_like(x) < 0.5).float())  # bpropActs: v.eltwiseMult(_sexMask)
    x.grad = None
    drop.eval()(x).sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, 0.5))  # bpropActs at test: v.scale(_keep)


@pytest.mark.parametrize("name", CODE_DROPOUT)
def test_the_papers_nets_use_the_codes_dropout(name):
    drops = [m for m in variants.get_variant(name).build(10).modules() if isinstance(m, nn.Dropout)]
    assert [type(m) for m in drops] == [ScaleAtTestDropout] * 2 and [m.p for m in drops] == [0.5, 0.5]


def test_torchvisions_net_keeps_nn_dropout():
    drops = [m for m in variants.get_variant("torchvision_alexnet").build(10).modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and all(type(m) is nn.Dropout for m in drops)


# --- LRN per tower: CHM layers/layers-145.cfg l.35-45 (rnorm1a reads conv1a, 48 maps), l.95-105 (rnorm2a, 128) ---


def test_per_tower_lrn_equals_two_separate_lrns_on_the_halves():
    torch.manual_seed(0)
    x = torch.randn(3, 96, 9, 9) * 30
    ref = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    want = torch.cat([ref(x[:, :48]), ref(x[:, 48:])], 1)
    got = TowerLRN(5, 1e-4, 0.75, 2.0, towers=2)(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # one LRN over all 96 maps differs exactly at the 2 maps either side of the boundary (47, 48 +- 1)
    whole = FastLRN(5, alpha=1e-4, beta=0.75, k=2.0)(x)
    differs = ((whole - got).abs().amax(dim=(0, 2, 3)) > 1e-4).nonzero().flatten().tolist()
    assert differs == [46, 47, 48, 49]


@pytest.mark.parametrize("name", TWO_TOWER)
def test_two_tower_nets_normalise_each_tower_alone(name):
    lrns = [m for m in variants.get_variant(name).build(10).features if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrns) == 2 and all(isinstance(m, TowerLRN) and m.towers == 2 for m in lrns)


@pytest.mark.parametrize("name", ["alexnet2012_one_tower_half", "alexnet2014", "zfnet", "zf13_alexnet_replication"])
def test_one_tower_nets_normalise_all_maps_together(name):
    lrns = [m for m in variants.get_variant(name).build(10).features if isinstance(m, nn.LocalResponseNorm)]
    assert lrns and not any(isinstance(m, TowerLRN) for m in lrns)


# --- the fixed schedule: CHM layers/layer-params-145.cfg -------------------------------------------------------

# The lab notes (l.169-181), "epoch N: set X" read as X from epoch N on: (first epoch, lr) per group.
NOTES_145 = {
    "weights": {1: 0.01, 25: 0.001, 51: 0.0001, 79: 0.00001},  # l.169, l.174, l.180
    "conv1 weights": {1: 0.01, 25: 0.001, 51: 0.0001, 67: 0.00001, 72: 0.0},  # l.177, l.179
    "biases": {1: 0.02},  # epsB=0.02 in every section but conv1's (l.19, ..., l.115); no note changes it
    "conv1 biases": {1: 0.02, 72: 0.0},  # epsB=0.0 at the end (l.3); when is not logged (taken as 72)
}
# The sections' values in force at the end (the file's [conv1a] ... [fc1000] epsW / epsB / wc).
FINAL_145 = {"conv1": (0.0, 0.0), "conv2": (0.00001, 0.02), "conv3": (0.00001, 0.02), "fc8": (0.00001, 0.02)}


def _expected(group: str, epoch: int) -> float:
    return [lr for first, lr in sorted(NOTES_145[group].items()) if first <= epoch][-1]


def _lrs_per_epoch(recipe, model) -> list[dict[str, float]]:
    opt = engine.build_optimizer(model, recipe, 0.01)
    sched = engine.build_scheduler(opt, recipe)
    out = []
    for _ in range(recipe.epochs):
        out.append({g["name"]: g["lr"] for g in opt.param_groups})
        opt.step()
        engine.step_scheduler(sched, 50.0, recipe)
    return out


def test_the_engine_runs_chm_145s_lr_per_epoch_and_group():
    v = variants.get_variant("alexnet2012")
    assert v.recipe.schedule == "table" and v.recipe.epochs == 90  # l.181 "epoch 91: killed"
    lrs = _lrs_per_epoch(v.recipe, v.build(10))
    for epoch, got in enumerate(lrs, start=1):
        assert got.keys() == NOTES_145.keys()
        for group, lr in got.items():
            assert lr == pytest.approx(_expected(group, epoch), rel=1e-9, abs=1e-12), (epoch, group)


def test_the_tables_last_epoch_is_the_cfg_files_sections_and_decay_is_on_weights_only():
    v = variants.get_variant("alexnet2012")
    model = v.build(10)
    opt = engine.build_optimizer(model, v.recipe, 0.01)
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    last = _lrs_per_epoch(v.recipe, v.build(10))[-1]
    convs = dict(model.features.named_children()) | dict(model.classifier.named_children())
    for layer, (eps_w, eps_b) in FINAL_145.items():
        w, b = group_of[id(convs[layer].weight)], group_of[id(convs[layer].bias)]
        assert last[w["name"]] == pytest.approx(eps_w) and last[b["name"]] == pytest.approx(eps_b), layer
        assert w["weight_decay"] == 0.0005 and b["weight_decay"] == 0.0  # wc=0.0005; biases wc 0 (layer.cu l.565)


def test_colour_noise_is_off_from_epoch_67():  # l.178 "set color noise to 0 from 0.1"
    recipe = variants.get_variant("alexnet2012").recipe
    view = TrainView("ksh12", 224, True, IMAGENET_PCA, 0.1, 255.0)
    assert [engine.epoch_view(view, recipe, e).eig is not None for e in (1, 66, 67, 90)] == [True, True, False, False]
    plateau = replace(recipe, schedule="plateau")
    assert engine.epoch_view(view, plateau, 90).eig is not None  # the paper text's rule keeps it on


def test_a_shorter_run_stretches_the_table():
    recipe = replace(variants.get_variant("alexnet2012").recipe, epochs=45)
    lrs = _lrs_per_epoch(recipe, variants.get_variant("alexnet2012").build(10))
    # run epoch e is the table's epoch 1 + 2 (e - 1): the drop at the table's 25 comes at the run's 13
    assert [lrs[e - 1]["weights"] for e in (12, 13, 26, 40)] == pytest.approx([0.01, 0.001, 0.0001, 0.00001])


def test_lr_scales_the_whole_table():
    recipe = variants.get_variant("alexnet2012").recipe
    opt = engine.build_optimizer(variants.get_variant("alexnet2012").build(10), recipe, 0.02)
    engine.build_scheduler(opt, recipe)
    assert {g["name"]: g["lr"] for g in opt.param_groups} == pytest.approx(
        {"weights": 0.02, "biases": 0.04, "conv1 weights": 0.02, "conv1 biases": 0.04}
    )


def test_the_table_survives_a_scheduler_state_round_trip():
    v = variants.get_variant("alexnet2012")
    opt = engine.build_optimizer(v.build(10), v.recipe, 0.01)
    sched = engine.build_scheduler(opt, v.recipe)
    for _ in range(70):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert all(f is None for f in state["lr_lambdas"])  # closures: nothing a weights_only load would refuse
    opt2 = engine.build_optimizer(v.build(10), v.recipe, 0.01)
    sched2 = engine.build_scheduler(opt2, v.recipe)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(state)
    opt2.step()
    sched2.step()  # into epoch 72: conv1 frozen
    assert {g["name"]: g["lr"] for g in opt2.param_groups}["conv1 weights"] == 0.0


# --- the plateau rule as the named alternative, and the run's identity ----------------------------------------


def test_plateau_rule_records_that_it_decides_on_the_reported_split():
    v = variants.get_variant("alexnet2012")
    plateau = resolve(v, RunRequest(profile="smoke", sets={"schedule": "plateau"}))
    assert any("decided on the reported split" in d for d in plateau.profile_deviations)
    table = resolve(v, RunRequest(profile="smoke"))
    assert not any("decided on the reported split" in d for d in table.profile_deviations)
    zf = resolve(variants.get_variant("zfnet"), RunRequest(profile="smoke"))  # ZF13 s3's manual annealing
    assert any("decided on the reported split" in d for d in zf.profile_deviations)
    assert plateau.config_hash() != table.config_hash()


def test_lr_table_is_not_settable_and_a_table_schedule_needs_one():
    with pytest.raises(HarnessError, match="lr_table"):
        parse_set(["lr_table=none"])
    with pytest.raises(HarnessError, match="needs a recipe with an lr table"):
        validate_recipe(replace(variants.get_variant("torchvision_alexnet").recipe, schedule="table"))


def test_network_notes_mark_the_runs_whose_network_computes_as_the_code():
    def notes(name: str) -> tuple[str, ...]:  # the network as its variant builds it (Recipe.dropout_scaling None)
        return network_notes(variants.get_variant(name), variants.get_variant(name).recipe)

    assert notes("alexnet2012") == (
        "dropout: kept units unscaled in training, x (1 - p) at test",
        "lrn: per tower",
    )
    assert notes("alexnet2014") == ("dropout: kept units unscaled in training, x (1 - p) at test",)
    for name in ("torchvision_alexnet", "ksh12_fig1_relu"):  # nn.Dropout; Fig. 1's nets have no dropout or LRN
        assert notes(name) == ()


# --- small items ------------------------------------------------------------------------------------------------


def test_conv6_init_follows_the_code():  # CHM layers/layers-146-2009.cfg l.266-267: initW=0.03,0.03 initB=1
    init = variants.get_variant("alexnet2012_conv6").recipe.init
    assert init.for_layer("conv6") == (0.03, 1.0) and init.for_layer("conv3") == (0.01, 0.0)


def test_fig1_nets_are_counted_at_cifar10s_ten_classes():
    for name in ("ksh12_fig1_relu", "ksh12_fig1_tanh"):
        v = variants.get_variant(name)
        assert v.num_classes == 10 and catalog.measure(v).params == 145_578  # 209,928 at 1,000 classes
    assert catalog.measure(variants.get_variant("alexnet2012")).params == 60_965_224


# --- the 2014 schedule: CC2 layers/layer-params-imagenet-1gpu.cfg l.6-7 and cudaconvnet/src/lr.cu l.94-113 ---------


def test_the_engine_runs_cc2s_weight_and_bias_schedules():
    # epsW=dexp[base=0.01;tgtFactor=250;numSteps=4]: 0.01 x 250^(-i/3) in quarters of training (here from epochs 1,
    # 23, 46, 68 of 90); epsB=dexp[base=0.02;tgtFactor=10;numSteps=2]: 0.02, then 0.002 for the second half
    v = variants.get_variant("alexnet2014")
    lrs = _lrs_per_epoch(v.recipe, v.build(10))
    weights = [0.01, 0.01 * 250 ** (-1 / 3), 0.01 * 250 ** (-2 / 3), 0.01 / 250]
    for epoch, got in enumerate(lrs, start=1):
        quarter = sum(epoch >= e for e in (23, 46, 68))
        assert got["weights"] == pytest.approx(weights[quarter]), epoch
        assert got["biases"] == pytest.approx(0.02 if epoch < 46 else 0.002), epoch
    opt = engine.build_optimizer(v.build(10), v.recipe, 0.01)
    assert [(g["name"], g["weight_decay"]) for g in opt.param_groups] == [("weights", 0.0005), ("biases", 0.0)]
