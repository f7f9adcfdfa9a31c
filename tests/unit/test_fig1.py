"""KSH12 Fig. 1: the ReLU / tanh pair, the training-error curve the engine logs, images to the threshold, the speedup
verdict on fixed numbers and the claim in a rendered report."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from harness import engine
from harness.augment import TrainView
from harness.distributed import Dist
from harness.progress import Progress
from harness.report.claims import check_claim
from harness.report.render import render
from harness.report.speedup import images_to_threshold
from harness.report.stats import Difference
from harness.report.types import FigurePaths, ReportInputs, RunRow
from harness.report.verdicts import ClaimTest, verdicts
from variants import claims, get_variant, list_variants

VARIANTS = tuple(list_variants())
[CLAIM] = [c for c in claims() if c.kind == "speedup"]


# --- the pair -----------------------------------------------------------------------------------------------------


def test_activation_switch_gives_the_same_net_with_tanh() -> None:
    relu, tanh = (get_variant(f"ksh12_fig1_{a}").build(10) for a in ("relu", "tanh"))
    kinds = {a: [type(m) for m in net.modules()] for a, net in (("relu", relu), ("tanh", tanh))}
    assert kinds["tanh"].count(nn.Tanh) == 4 and nn.ReLU not in kinds["tanh"]  # conv1-3 and fc6
    assert kinds["relu"].count(nn.ReLU) == 4 and nn.Tanh not in kinds["relu"]
    shapes = {a: [(n, p.shape) for n, p in net.named_parameters()] for a, net in (("relu", relu), ("tanh", tanh))}
    assert shapes["relu"] == shapes["tanh"]
    assert sum(p.numel() for p in relu.parameters()) == 145_578  # 2,432 + 25,632 + 51,264 + 65,600 + 650


def test_fig1_net_follows_the_80sec_cfg() -> None:
    """CHM example-layers/layers-80sec.cfg: 32 px -> conv1 32 -> max 16 -> conv2 32 -> avg 8 -> conv3 64 -> avg 4."""
    v = get_variant("ksh12_fig1_relu")
    f = v.build(10).features
    assert [type(f.pool1), type(f.pool2), type(f.pool3)] == [nn.MaxPool2d, nn.AvgPool2d, nn.AvgPool2d]
    assert v.input_size == 32 and v.recipe.weight_decay == 0 and v.recipe.lr == 0.001
    assert v.build(10)(torch.zeros(2, 3, v.min_input_size, v.min_input_size)).shape == (2, 10)
    assert any(d.startswith("Architecture: CHM example-layers/layers-80sec.cfg") for d in v.deviations)


# --- the curve ----------------------------------------------------------------------------------------------------


def test_train_one_epoch_logs_error_every_few_steps_keyed_by_images() -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.randint(0, 256, (160, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 10, (160,)))
    loader = DataLoader(data, batch_size=8, drop_last=True)
    model = get_variant("ksh12_fig1_tanh").build(10)
    recipe = get_variant("ksh12_fig1_tanh").recipe
    opt = engine.build_optimizer(model, recipe, recipe.lr)
    d = Dist(0, 1, 0, torch.device("cpu"))
    view = TrainView("ksh12", 32)
    out = engine.train_one_epoch(
        model, loader, view, opt, d, recipe, Progress("t", 160, False), images_before=320, every=5
    )
    assert [i for i, _ in out.curve] == [360, 400, 440, 480]  # 20 steps of 8, a point every 5
    short = engine.train_one_epoch(model, loader, view, opt, d, recipe, Progress("t", 160, False), every=7)
    assert [i for i, _ in short.curve] == [56, 112, 160]  # the last 6 steps make the epoch's last point
    assert all(0 <= e <= 100 for _, e in out.curve)
    assert engine.curve_every(390) == 10 and engine.curve_every(10_009) == 200


# --- images to the threshold --------------------------------------------------------------------------------------


def test_images_to_threshold_uses_a_full_running_window() -> None:
    curve = [(100 * i, e) for i, e in enumerate((90, 20, 60, 40, 30, 20, 20, 10), start=1)]
    assert images_to_threshold(curve, 30.0, window=3) == (600, True)  # mean(40, 30, 20) first <= 30
    assert images_to_threshold(curve, 30.0, window=1) == (200, True)  # one noisy point would do
    assert images_to_threshold(curve, 5.0, window=3) == (800, False)  # censored: all it saw
    assert images_to_threshold(curve[:2], 30.0, window=3) is None  # shorter than a window
    assert images_to_threshold(list(reversed(curve)), 30.0, window=3) == (600, True)  # order by images


# --- the verdict --------------------------------------------------------------------------------------------------


def speedup(ratio: float, se: float | None = 0.1, proxy: bool = False, n: int = 3) -> tuple[str, str]:
    """`ratio` = baseline / variant images: d = -log(ratio)."""
    d = Difference(-math.log(ratio), se, 4.0, n, n)
    [result] = verdicts([ClaimTest("speedup", 6.0, proxy, d)])
    return result


def test_speedup_on_paper_data_reads_the_ratio_against_half_to_twice_the_claim() -> None:
    half = 2.776445 * 0.1  # t(0.975, 4) x se: the interval is ratio x exp(+-0.278)
    assert speedup(6.0)[0] == "holds"
    assert speedup(2.5)[0] == "holds"  # [1.90, 3.29] overlaps [3, 12]
    assert speedup(3.0 / math.exp(half) - 0.05)[0] == "does not hold"  # within (1/3, 3): under half the claim
    assert speedup(0.5)[0] == "does not hold"  # tanh faster: excludes 1 on the other side
    assert speedup(30.0)[0] == "inconclusive"  # wholly beyond 12
    assert speedup(1.5, se=1.0)[0] == "inconclusive"  # includes 1, reaches past the band
    assert speedup(6.0, n=2)[0] == "inconclusive"  # two seeds a side
    assert "overlaps [3x, 12x]" in speedup(6.0)[1]


def test_speedup_on_proxy_data_is_direction_only() -> None:
    assert speedup(1.5, proxy=True)[0] == "supported"  # far below 6x, but the direction holds
    assert speedup(0.7, proxy=True)[0] == "contradicted"
    assert speedup(1.05, se=0.3, proxy=True)[0] == "inconclusive"


def test_speedup_claim_data() -> None:
    assert CLAIM.delta == 6.0 and CLAIM.threshold == 25.0  # KSH12 Fig. 1: "25% training error", "six times"
    assert CLAIM.proxy_threshold is not None and 0 < CLAIM.proxy_threshold < 100
    with pytest.raises(ValueError):
        verdicts([ClaimTest("speedup", 1.0, True, Difference(0.1, 0.1, 4.0, 3, 3))])


# --- measured from runs and rendered -----------------------------------------------------------------------------


def run(variant: str, seed: int, reach: int | None, cifar: bool) -> RunRow:
    """A run whose curve (every 1,000 images) drops from 90 % to 5 % at `reach` images (None: stays at 40 %)."""
    points = range(1000, 60001, 1000)
    curve = tuple((i, 40.0 if reach is None else 90.0 if i < reach else 5.0) for i in points)
    return RunRow(
        run_id=f"{variant}-{seed}-{cifar}".ljust(32, "0"),
        experiment="e",
        kind="variant",
        variant=variant,
        profile="paper" if cifar else "proxy",
        dataset="cifar10" if cifar else "mnist5k",
        dataset_name="cifar10" if cifar else "mnist5k",
        split="val",
        protocol="center",
        seed=seed,
        final_top1=70.0,
        center_top1=70.0,
        learned=1.0,
        num_classes=10,
        train_err=curve,
    )


def test_speedup_claim_measured_from_curves_and_rendered() -> None:
    rows = [run("ksh12_fig1_relu", s, r, True) for s, r in enumerate((5000, 6000, 7000))]
    rows += [run("ksh12_fig1_tanh", s, r, True) for s, r in enumerate((30000, 36000, 42000))]
    rows += [run("ksh12_fig1_relu", s, r, False) for s, r in enumerate((5000, 6000, 7000))]
    rows += [run("ksh12_fig1_tanh", s, None, False) for s in range(3)]  # never reaches: censored at 60,000
    results = {r.data: r for r in check_claim(CLAIM, rows, VARIANTS)}
    paper, proxy = results["cifar10"], results["mnist5k"]
    reached = [images_to_threshold(x.train_err, 25.0) for x in rows[:6]]
    assert [r[0] for r in reached] == [8000, 9000, 10000, 33000, 39000, 45000]  # type: ignore[index]  # 4 of 5 at 5 %
    relu, tanh = (sum(math.log(r[0]) for r in side) / 3 for side in (reached[:3], reached[3:]))  # type: ignore[index]
    assert math.exp(-paper.measured) == pytest.approx(math.exp(tanh - relu))  # type: ignore[operator]
    assert paper.verdict == "holds" and "threshold 25 %" in paper.reason
    assert proxy.proxy and proxy.verdict == "supported"
    assert f"threshold {CLAIM.proxy_threshold:g} %" in proxy.reason and "0 / 3 runs never reached it" in proxy.reason
    inputs = ReportInputs(
        "t", "sqlite:///x.db", ("e",), tuple(rows), VARIANTS, (CLAIM,), figures=FigurePaths(), profile_deviations={}
    )
    md = render(inputs)
    [line] = [x for x in md.splitlines() if x.startswith("| relu_speedup") and "cifar10" in x]
    assert "6x faster to 25 % train error" in line and "**holds**" in line and "x [" in line
