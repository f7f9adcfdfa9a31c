"""The rendered report, byte for byte, on fixed inputs without training or MLflow: a guard for refactoring
`harness.report`. Two reports: one mixing the papers' data (ImageNet, CIFAR-10) with proxy data, and one of proxy
runs only (its sections lead with the claims). Together they reach every section of `render.sections`: reported
numbers and their statuses, ensembles, fidelity, claims of every kind (paired, Welch, protocols, ensembles, speedup,
direction, equivalence, at_least, proxy and untestable), the seed plan, proxy tables with the gap, sweeps, figures,
the qualitative evaluation, deviations, tuned runs and the parallel schemes.

A deliberate change to the report regenerates the golden files:
`UPDATE_GOLDEN=1 pytest -n 0 tests/unit/test_report_golden.py` (then read the diff in `git diff tests/unit/golden/`)."""

from __future__ import annotations

import difflib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from harness import schema
from harness.report.render import render
from harness.report.types import (
    EnsembleResult,
    FigurePaths,
    Measured,
    Qualitative,
    ReportInputs,
    RetrievalStat,
    RunRow,
    Stat,
    SweepRow,
)
from variants import claims, get_variant, list_variants

GOLDEN = Path(__file__).resolve().parent / "golden"
VARIANTS = tuple(list_variants())
CLAIMS = tuple(claims())


def imagenet(variant: str, seed: int, ten: float | None, center: float | None = None, **kw: object) -> RunRow:
    protocol = get_variant(variant).recipe.test_protocol
    final = ten if protocol == "ten_crop" else center
    row = RunRow(
        run_id=f"i-{variant}-{seed}".ljust(32, "0"),
        experiment="imagenet-paper",
        kind="variant",
        variant=variant,
        paper=get_variant(variant).paper,
        profile="paper",
        dataset="imagefolder",
        dataset_name="ILSVRC-2012",
        split="val",
        protocol=protocol,
        seed=seed,
        epochs=90,
        final_top1=final,
        final_top5=None if final is None else final + 22,
        ten_crop_top1=ten,
        ten_crop_top5=None if ten is None else ten + 22,
        center_top1=center,
        center_top5=None if center is None else center + 23,
        learned=1.0,
        num_classes=1000,
        experiment_id="1",
    )
    return replace(row, **kw)  # type: ignore[arg-type]


def cifar(variant: str, seed: int, reach: int | None) -> RunRow:
    """A KSH12 Fig. 1 run whose error curve (every 1,000 images) drops from 90 % to 5 % at `reach` (None: stays at
    40 %, never reaching the threshold)."""
    curve = tuple((i, 40.0 if reach is None else 90.0 if i < reach else 5.0) for i in range(1000, 60001, 1000))
    return RunRow(
        run_id=f"c-{variant}-{seed}".ljust(32, "0"),
        experiment="fig1",
        kind="variant",
        variant=variant,
        profile="paper",
        dataset="cifar10",
        dataset_name="cifar10",
        split="val",
        protocol="center",
        seed=seed,
        final_top1=70.0 + seed / 4,
        final_top5=97.0,
        center_top1=70.0 + seed / 4,
        center_top5=97.0,
        learned=1.0,
        num_classes=10,
        train_err=curve,
        experiment_id="2",
    )


def analysed(towers: tuple[float, ...]) -> Qualitative:
    return Qualitative(
        towers=max(1, len(towers)),
        colour_mean=sum(towers) / len(towers) if towers else 0.5,
        tower_means=towers,
        retrieval=(
            RetrievalStat("fc7", 0.9, 0.85, 0.8, 0.2),
            RetrievalStat("fc7_code", 0.7, 0.65, 0.6, 0.05),
            RetrievalStat("pixel_code", 0.2, 0.2, 0.2, 0.05),
            RetrievalStat("pixels", 0.3, 0.25, 0.2, 1.5),
        ),
        code_bits=64,
        shift_top1=tuple((s, 90.0 - 5 * abs(s)) for s in schema.QUAL_SHIFT_STEPS),
        seconds=12.0 + len(towers),
    )


def clutter(variant: str, seed: int, top1: float, **kw: object) -> RunRow:
    """A proxy run: centre crop and 5 crops (no 10-crop, a mirrored digit is another symbol), 8 epochs of curves."""
    row = RunRow(
        run_id=f"p-{variant}-{seed}".ljust(32, "0"),
        experiment="mnist-clutter-proxy",
        kind="variant",
        variant=variant,
        profile="proxy",
        dataset="mnist-clutter",
        dataset_name="mnist-clutter",
        split="val",
        protocol="center",
        seed=seed,
        epochs=8,
        final_top1=top1,
        final_top5=99.0,
        center_top1=top1,
        center_top5=99.0,
        five_crop_top1=top1 + 0.6 + seed / 10,
        five_crop_top5=99.2,
        learned=1.0,
        num_classes=10,
        val_top1=tuple((e, top1 * e / 8) for e in range(1, 9)),
        train_top1=tuple((e, min(100.0, (top1 + 3) * e / 8)) for e in range(1, 9)),
        train_loss=tuple((e, 2.3 / e) for e in range(1, 9)),
        experiment_id="3",
    )
    return replace(row, **kw)  # type: ignore[arg-type]


ALEX = [imagenet("alexnet2012", s, t, t - 1.6) for s, t in enumerate((59.0, 59.6, 59.3, 59.1, 59.4, 59.2))]
PAPER_ROWS = (
    *ALEX,
    *(imagenet("alexnet2012_no_lrn", s, t) for s, t in enumerate((57.8, 57.9, 57.7))),  # paired by seed: holds
    *(imagenet("alexnet2012_nonoverlap_pool", s, t) for s, t in enumerate((59.9, 60.0, 60.1))),  # wrong sign
    imagenet("alexnet2012_one_tower_half", 0, 57.0),  # one seed: inconclusive
    *(imagenet("alexnet2012_no_pca", s, t) for s, t in enumerate((57.0, 61.0, 59.0))),  # at_least, spread > effect
    *(imagenet("alexnet2012_no_conv3", s, t) for s, t in enumerate((54.2, 54.3, 54.4))),  # beyond twice the claim
    *(imagenet("alexnet2012_no_conv2", 10 + s, t) for s, t in enumerate((57.1, 57.6, 56.9))),  # no common seed: Welch
    *(imagenet("alexnet2012_no_dropout", s, t) for s, t in enumerate((55.0, 55.4, 55.2))),  # direction
    *(imagenet("zf13_alexnet_replication", s, t) for s, t in enumerate((59.5, 59.7, 59.6))),
    *(imagenet("zf13_alexnet_replication_no_fc7", s, t) for s, t in enumerate((59.4, 59.8, 59.5))),  # equivalence
    imagenet("torchvision_alexnet", 0, None, 56.0),  # tolerance 0.01: not reproduced
    imagenet("alexnet2014", 0, None, 57.5, recipe_modified=True, modified_keys="lr", tuned_from="alex-sweep"),
    imagenet("alexnet2014", 1, None, 57.9, kind="trial", sweep="alex-sweep", recipe_modified=True),
    imagenet("alexnet2014", 2, None, 58.1, parallel="none", world_size=2, batch_size=256, effective_lr=0.02,
             images_per_sec=900.0, step_seconds=0.28, comm_bytes_per_step=2**20 * 230, hours=30.0),
    imagenet("alexnet2014", 3, None, 58.0, parallel="hybrid", world_size=2, batch_size=256, effective_lr=0.02,
             images_per_sec=1100.0, step_seconds=0.23, comm_bytes_per_step=2**20 * 25, hours=25.0),
    imagenet("zfnet", 0, 61.0, status="FAILED", final_top1=None, final_top5=None, ten_crop_top1=None,
             ten_crop_top5=None, learned=None),
    imagenet("zfnet", 1, 62.0, dataset_name="ILSVRC-2011", split="val"),  # another data set: not comparable
)  # fmt: skip
FIG1_ROWS = (
    *(cifar("ksh12_fig1_relu", s, r) for s, r in enumerate((5000, 6000, 7000))),
    *(cifar("ksh12_fig1_tanh", s, r) for s, r in enumerate((30000, 36000, None))),  # one censored run
)
PROXY_ROWS = (
    *(
        clutter("alexnet2012", s, t, qualitative=analysed((0.1 + s / 100, 0.6)))
        for s, t in enumerate((96.0, 96.4, 96.2))
    ),
    *(clutter("alexnet2012_no_augmentation", s, t) for s, t in enumerate((95.1, 95.0, 95.6))),
    *(clutter("alexnet2012_no_lrn", s, t) for s, t in enumerate((95.9, 96.1, 96.0))),  # lrn: not testable here
    clutter("zfnet", 0, 97.0, qualitative=analysed(())),
    clutter("zfnet", 1, 97.6),
    clutter("zfnet_wide", 0, 10.2, learned=0.0, train_loss=((1, 2.31), (2, 2.30))),  # did not learn
    clutter("zfnet_wide", 1, 96.1, status="KILLED", final_top1=None, final_top5=None),  # unfinished
)
ENSEMBLES = (
    EnsembleResult("alexnet2012", "ILSVRC-2012", "val", "ten_crop", None, tuple(r.run_id for r in ALEX[:5]), 62.0,
                   83.0, "paper"),
    EnsembleResult("alexnet2012", "mnist-clutter", "val", "center", None, tuple(r.run_id for r in PROXY_ROWS[:2]),
                   96.9, 99.3, "proxy"),
)  # fmt: skip
MEASURED = {
    "torchvision_alexnet": Measured(61_100_840, 714_188_480, 233.0812),
    "alexnet2012": Measured(60_965_224, 724_406_816, 232.564),
    "zfnet": Measured(62_357_608, 1_170_000_000, 237.9),
}
SWEEPS = (
    SweepRow("zf-proxy-lr", "zfnet", "mnist-clutter", "proxy", "lr", n_trials=4, n_pruned=1, n_failed=1,
             best_value=98.25, best_params=(("lr", "0.0123456789"),), epochs=4),
    SweepRow("alex-sweep", "alexnet2012", "ILSVRC-2012", "paper", "default", n_trials=6, n_pruned=2, best_value=61.05,
             best_params=(("lr", "0.02"), ("momentum", "0.9"), ("schedule", "plateau")), epochs=30,
             paper=Stat(59.3, 0.3, 3), paper_run_ids=tuple(r.run_id for r in ALEX[:3]), paper_epochs=(90,)),
)  # fmt: skip
FIGURES = FigurePaths(
    reproduced_vs_reported="r_figures/reproduced_vs_reported.png",
    val_top1={("ILSVRC-2012", "val"): "r_figures/val_top1_ILSVRC-2012-val.png",
              ("mnist-clutter", "val"): "r_figures/val_top1_mnist-clutter-val.png"},
    curves={("mnist-clutter", "val", "zfnet_wide"): "r_figures/curves_mnist-clutter-val__zfnet_wide.png",
            ("mnist-clutter", "val", "zfnet"): "r_figures/curves_mnist-clutter-val__zfnet.png"},
    kernels={("mnist-clutter", "val", "alexnet2012"): ("r_figures/k__alex_1.png", "r_figures/k__alex_2.png"),
             ("mnist-clutter", "val", "zfnet"): ("r_figures/k__zfnet.png",)},
    qualitative={("mnist-clutter", "val", "zfnet"): (("colour.png", "r_figures/qual__zfnet__colour.png"),
                                                     ("unknown.png", "r_figures/qual__zfnet__unknown.png"))},
)  # fmt: skip
DEVIATIONS: dict[str, tuple[str, ...] | None] = {
    "paper": (),
    "proxy": ("pool_to = 1: fc6 reads pool5 as it is (docs/proxy.md)", "epochs = 8"),
    "smoke": None,
}


def mixed() -> ReportInputs:
    return ReportInputs(
        title="golden mixed",
        store="sqlite:///mlruns/mlflow.db",
        experiments=("imagenet-paper", "fig1", "mnist-clutter-proxy"),
        rows=(*PAPER_ROWS, *FIG1_ROWS, *PROXY_ROWS),
        variants=VARIANTS,
        claims=CLAIMS,
        measured=MEASURED,
        ensembles=ENSEMBLES,
        figures=FIGURES,
        profile_deviations=DEVIATIONS,
        sweeps=SWEEPS,
        ui_url="http://127.0.0.1:5000",
    )


def proxy_only() -> ReportInputs:
    return ReportInputs(
        title="golden proxy",
        store="sqlite:///mlruns/mlflow.db",
        experiments=("mnist-clutter-proxy",),
        rows=PROXY_ROWS,
        variants=VARIANTS,
        claims=CLAIMS,
        ensembles=ENSEMBLES[1:],
        figures=FigurePaths(curves={k: v for k, v in FIGURES.curves.items()}),
        profile_deviations={"proxy": DEVIATIONS["proxy"]},
    )


CASES = {"mixed": mixed, "proxy_only": proxy_only}


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_matches_the_golden_file(name: str) -> None:
    md = render(CASES[name]())
    path = GOLDEN / f"report_{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(md, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True), md.splitlines(keepends=True), str(path), "render()", n=2
        )
    )
    assert md == expected, f"the rendered report differs from {path.name} (UPDATE_GOLDEN=1 if deliberate):\n{diff}"
