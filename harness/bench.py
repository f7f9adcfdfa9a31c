"""`harness bench`: training images/s of a bare PyTorch loop against the harness's own step, the input pipeline per
CPU core against torchvision's PIL preset, and achieved TFLOP/s and MFU (harness.flops), in one process.

Rows, per variant: (a) the bare loop (the limit: model, fused SGD, cross-entropy on one random batch already on the
device); (b) the harness's step on the same shapes (`harness_step_ips`); (c) the input pipeline alone, one thread,
no workers, on ImageNet-sized JPEGs (harness.photos): torchvision's preset once, the harness's path per variant's
recipe without and with its batch view on the CPU (`harness_pipeline_ips`). Warm-up steps are not timed; on a GPU
every timing ends with a synchronize.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import augment, data, datasets, engine, flops, folders, loader, memory, photos, prepare
from harness import precision as precision_mod
from harness.distributed import Dist
from harness.errors import HarnessError
from harness.progress import Progress
from harness.transforms import IMAGENET_PCA, MEAN, STD
from variants import UnknownVariantError, Variant, get_variant

WARMUP_STEPS = 3
PIPELINE_CLASSES = 10
PIPELINE_BATCH = 32  # keys per `__getitems__` call in the harness's pipeline
NUM_CLASSES = 1000  # ImageNet's: the classifier's shape is part of the step


@dataclass(frozen=True)
class BenchSpec:
    names: tuple[str, ...]
    size: int = 224
    batch_size: int = 128
    steps: int = 20
    precision: str = "fp32"
    device: str = "auto"
    images: int = 200  # JPEGs decoded per pipeline measurement; 0: no pipeline rows
    rounds: int = 1  # (a) and (b) alternated this many times, each row the median: drift on a shared machine


@dataclass(frozen=True)
class BenchHeader:
    device: str
    torch: str
    threads: int
    precision: str
    size: int
    batch_size: int
    steps: int
    rounds: int = 1


@dataclass(frozen=True)
class BenchRow:
    variant: str  # "-" for the torchvision preset (no model)
    what: str  # "bare loop", "harness step", "torchvision PIL preset", "harness pipeline" (+ view)
    images_per_sec: float
    ratio: float  # to `vs` (same variant)
    vs: str  # "bare loop" for training rows, "torchvision PIL preset" for pipeline rows
    tflops: float | None = None  # achieved model TFLOP/s (training rows)
    mfu: float | None = None  # fraction of the GPU's dense peak; None on the CPU or an unknown GPU
    data_wait: float | None = None  # harness step rows: share of the step time waiting for the next batch


@dataclass(frozen=True)
class BenchResult:
    header: BenchHeader
    rows: tuple[BenchRow, ...]


# --- checks ---------------------------------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise HarnessError("--device cuda: no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)")
    if name not in ("cpu", "cuda"):
        raise HarnessError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


def check_spec(spec: BenchSpec) -> list[Variant]:
    if spec.precision not in flops.PRECISIONS:
        raise HarnessError(f"unknown precision {spec.precision!r}; expected one of {', '.join(flops.PRECISIONS)}")
    found = []
    for name in spec.names:
        try:
            v = get_variant(name)
        except UnknownVariantError as e:
            raise HarnessError(str(e)) from None
        if spec.size < v.min_input_size:
            raise HarnessError(f"--size {spec.size} is below {name}'s smallest input, {v.min_input_size} px")
        found.append(v)
    return found


def check_writable(path: Path) -> None:
    """Fail before measuring, not after: the file's folder must exist and be writable, and it must not be a folder."""
    if path.is_dir():
        raise HarnessError(f"--json {path} is a folder, not a file")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise HarnessError(f"--json {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise HarnessError(f"--json {path}: not writable")


# --- timing and precision -------------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run: Callable[[], None], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    run()
    sync(device)
    return time.perf_counter() - start


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- (a) the bare loop and (b) the harness's step -------------------------------------------------------------------


def bare_loop_ips(v: Variant, spec: BenchSpec, device: torch.device) -> float:
    """images/s of the plainest training step: the variant, fused SGD with momentum, cross-entropy, one fixed random
    batch already on the device, with the precision settings the harness uses (harness.precision: TF32 switches,
    cuDNN autotuning, bf16 autocast, channels_last on CUDA). The limit the harness's step is measured against."""
    precision_mod.configure(device, spec.precision)
    layout = precision_mod.memory_format(device)
    torch.manual_seed(0)
    model = v.build(NUM_CLASSES).to(device, memory_format=layout)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4, fused=True)
    x = torch.randn(spec.batch_size, 3, spec.size, spec.size, device=device).contiguous(memory_format=layout)
    y = torch.randint(0, NUM_CLASSES, (spec.batch_size,), device=device)

    def steps(n: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(n):
                with precision_mod.autocast(device, spec.precision):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        return run

    timed(steps(WARMUP_STEPS), device)
    return spec.batch_size * spec.steps / timed(steps(spec.steps), device)


def harness_step_ips(
    v: Variant, spec: BenchSpec, device: torch.device, source: Path | None = None, workers: int | None = None
) -> tuple[float, float]:
    """images/s of the harness's own training, and the share of its time spent waiting for the next batch (the
    epoch metric `data_wait_fraction`): `engine.train_one_epoch` over the run's loader (`loader.train_loader`,
    built once, default workers) of an in-memory uint8 `datasets.ArrayDataset` of squares of the bench's size, with the
    recipe's batch view on the device (harness.augment: crop = the whole square, flip, PCA lighting if the recipe
    has it, normalisation), model init, optimiser groups, per-step work (ZF13 renormalisation) and precision. The
    one function to re-wire when the data path or the engine changes. `source`: a JPEG folder or a prepared store
    instead, read as a run reads it (`data.load_datasets`, the recipe's cut, default workers or `workers`)."""
    r = replace(v.recipe, batch_size=spec.batch_size)
    d = Dist(0, 1, 0, device)
    g = torch.Generator().manual_seed(0)
    if source is not None:
        train = data.load_datasets(source_spec(v, source, spec.size)).train
    else:
        n = (WARMUP_STEPS + spec.steps) * spec.batch_size
        images = torch.randint(0, 256, (n, 3, spec.size, spec.size), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, NUM_CLASSES, (n,), generator=g).tolist()
        eig = IMAGENET_PCA if r.pca_lighting else None
        view = augment.TrainView(r.train_aug, spec.size, True, eig, r.pca_alpha_std, r.input_scale)
        train = datasets.ArrayDataset(images, labels, view, spec.size, datasets.ItemCut("none", spec.size))
    batches = loader.train_loader(train, spec.batch_size, 0, d, workers)  # built once, as in a run

    precision_mod.configure(device, spec.precision)
    model = engine.prepare_model(v, NUM_CLASSES, r, seed=0).to(
        device, memory_format=precision_mod.memory_format(device)
    )
    opt = engine.build_optimizer(model, r, r.lr)
    scheduler = engine.build_scheduler(opt, r, spec.steps)

    waits: list[float] = []

    def epoch(n: int, e: int) -> Callable[[], None]:
        def run() -> None:
            batches.sampler.set_epoch(e)  # type: ignore[attr-defined]
            progress = Progress("bench", 0, enabled=False)
            every = engine.curve_every(spec.steps)
            first = itertools.islice(batches, n)  # a folder holds more images than the bench times
            trained = engine.train_one_epoch(
                model, first, train.view, opt, d, r, progress, scheduler, 0, every, g, precision=spec.precision
            )
            waits.append(trained.data_wait)

        return run

    try:
        timed(epoch(WARMUP_STEPS, 0), device)
        seconds = timed(epoch(spec.steps, 1), device)
        return spec.batch_size * spec.steps / seconds, min(1.0, waits[-1] / seconds)
    except engine.Diverged as e:
        raise HarnessError(f"{v.name}: the harness step diverged on random data ({e})") from None


# --- (c) the input pipeline per core --------------------------------------------------------------------------------


def seeded_order(n: int, count: int) -> list[int]:
    """`count` indices into n items in a seeded order, cycling when n is smaller."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist()
    return [order[k % n] for k in range(count)]


def items_per_sec(dataset: torch.utils.data.Dataset, n: int) -> float:
    """Items/s of dataset[i], one at a time, over `n` items in a seeded order (after 2 untimed)."""
    order = seeded_order(len(dataset), n + 2)  # type: ignore[arg-type]
    for i in order[:2]:
        dataset[i]
    start = time.perf_counter()
    for i in order[2:]:
        dataset[i]
    return n / (time.perf_counter() - start)


def torchvision_pipeline_ips(root: Path, size: int, n: int) -> float:
    """torchvision's reference training preset on PIL images (references/classification/presets.py,
    ClassificationPresetTrain): ImageFolder open + RandomResizedCrop + RandomHorizontalFlip + ToTensor + Normalize."""
    from torchvision import datasets
    from torchvision import transforms as T

    tf = T.Compose(
        [T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]
    )
    return items_per_sec(datasets.ImageFolder(str(root / "train"), transform=tf), n)


def source_spec(v: Variant, root: Path, size: int) -> datasets.DataSpec:
    """A run's data spec for `v`'s recipe at this crop size on a folder or store."""
    r = v.recipe
    return datasets.DataSpec(
        "imagefolder",
        root,
        image_size=size,
        resize=recipe_resize(v, size),
        train_aug=r.train_aug,
        pca_lighting=r.pca_lighting,
        pca_alpha_std=r.pca_alpha_std,
        input_scale=r.input_scale,
    )


def recipe_resize(v: Variant, size: int) -> int:
    """The recipe's resize:crop ratio (256:224) at this crop size."""
    return max(size, round(size * v.recipe.resize / v.recipe.crop))


def harness_pipeline_ips(v: Variant, root: Path, size: int, n: int, with_view: bool = False) -> float:
    """The harness's own input path for `v`'s recipe, on the CPU: `data.load_datasets` on the folder (its up-front
    check of every file is not timed), then what a DataLoader worker does, batches of `PIPELINE_BATCH` keyed items
    (`__getitems__`: decode, the recipe's per-image cut, stacking as uint8); `with_view`: the batch view
    (harness.augment: crop, flip, PCA lighting, normalisation) on the CPU too, as a CPU-only run does it (on a GPU
    it runs on the device). The one function to re-wire when the data path changes."""
    ds = data.load_datasets(source_spec(v, root, size), "center").train
    g = torch.Generator().manual_seed(0)
    keys = [(i, 1_000_003 * (k + 1)) for k, i in enumerate(seeded_order(len(ds), n + 2))]  # type: ignore[arg-type]

    def batches(ks: list[tuple[int, int]]) -> None:
        for b in range(0, len(ks), PIPELINE_BATCH):
            x, _ = ds.__getitems__(ks[b : b + PIPELINE_BATCH])  # type: ignore[attr-defined]
            if with_view:
                ds.view(x, g)  # type: ignore[attr-defined]

    batches(keys[:2])
    start = time.perf_counter()
    batches(keys[2:])
    return n / (time.perf_counter() - start)


# --- the whole bench ------------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def training_row(
    v: Variant, what: str, ips: float, bare: float, spec: BenchSpec, device: torch.device, wait: float | None = None
) -> BenchRow:
    per_image = flops.variant_flops_per_image(v, spec.size, NUM_CLASSES)
    achieved = ips * per_image / 1e12
    peak = flops.peak_tflops(torch.cuda.get_device_name(device), spec.precision) if device.type == "cuda" else None
    util = flops.mfu(ips, per_image, peak) if peak else None
    return BenchRow(v.name, what, ips, ips / bare, "bare loop", achieved, util, wait)


def run_bench(spec: BenchSpec, jpeg_root: Path | None = None) -> BenchResult:
    """Measure every row of `spec`; `jpeg_root`: an existing folder of JPEGs for (c) (default: generated)."""
    variants = check_spec(spec)
    device = resolve_device(spec.device)
    memory.keep_freed_memory()  # as `run` and `sweep` do: both loops of the table get it
    header = BenchHeader(
        device_name(device), torch.__version__, torch.get_num_threads(), spec.precision, spec.size,
        spec.batch_size, spec.steps, spec.rounds,
    )  # fmt: skip
    rows: list[BenchRow] = []
    with contextlib.ExitStack() as stack:
        stores: dict[int, Path] = {}
        if spec.images > 0 or jpeg_root is not None:
            if jpeg_root is None:
                jpeg_root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-jpegs-")))
                per_class = -(-spec.images // PIPELINE_CLASSES)
                photos.imagenet_like_jpegs(jpeg_root, per_class, PIPELINE_CLASSES, splits=("train",))
                photos.imagenet_like_jpegs(jpeg_root, 1, PIPELINE_CLASSES, splits=("val",))
            # KSH12 s2's squares prepared once (`harness prepare`, untimed): what a run reads from a store
            for size in sorted({recipe_resize(v, spec.size) for v in variants}):
                stores[size] = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-store-"))) / "s"
                prepare.prepare(jpeg_root, stores[size], resize=size, verbose=False)
        # (a) and (b): in memory, and, with JPEGs, read as a run reads them (default workers) from the folder and
        # from the store, when they hold enough images for the timed batches
        held = len(folders.scan_split(jpeg_root / "train")[1]) if jpeg_root is not None else 0
        enough = held >= (WARMUP_STEPS + spec.steps) * spec.batch_size
        for v in variants:
            sources: dict[str, Path | None] = {"harness step": None}
            if enough and jpeg_root is not None:
                sources["harness step, JPEGs"] = jpeg_root
                sources["harness step, store"] = stores[recipe_resize(v, spec.size)]
            bares: list[float] = []
            harness: dict[str, list[tuple[float, float]]] = {what: [] for what in sources}
            for _ in range(spec.rounds):
                bares.append(bare_loop_ips(v, spec, device))
                for what, source in sources.items():
                    harness[what].append(harness_step_ips(v, spec, device, source))
            bare = statistics.median(bares)
            rows.append(training_row(v, "bare loop", bare, bare, spec, device))
            for what, timed_rounds in harness.items():
                ips = statistics.median(x for x, _ in timed_rounds)
                wait = statistics.median(w for _, w in timed_rounds)
                rows.append(training_row(v, what, ips, bare, spec, device, wait))
        if jpeg_root is not None and spec.images > 0:
            with threads(1):  # per core: one thread, no workers; alternated like (a) and (b)
                refs: list[float] = []
                own: dict[tuple[str, str], list[float]] = {}
                for _ in range(spec.rounds):
                    refs.append(torchvision_pipeline_ips(jpeg_root, spec.size, spec.images))
                    for v in variants:
                        for what, root, view in (
                            ("harness pipeline", jpeg_root, False),
                            ("harness pipeline + view", jpeg_root, True),
                            ("prepared store + view", stores[recipe_resize(v, spec.size)], True),
                        ):
                            ips = harness_pipeline_ips(v, root, spec.size, spec.images, view)
                            own.setdefault((v.name, what), []).append(ips)
            reference = statistics.median(refs)
            rows.append(BenchRow("-", "torchvision PIL preset", reference, 1.0, "torchvision PIL preset"))
            for (name, what), rates in own.items():
                ips = statistics.median(rates)
                rows.append(BenchRow(name, what, ips, ips / reference, "torchvision PIL preset"))
    return BenchResult(header, tuple(rows))


# --- output ---------------------------------------------------------------------------------------------------------


def render(result: BenchResult) -> str:
    h = result.header
    on_gpu = not h.device.startswith("cpu")
    lines = [
        f"device {h.device} | torch {h.torch} | {h.threads} threads | precision {h.precision} | "
        f"{h.size} px, batch {h.batch_size}, {h.steps} timed steps"
        + (f", median of {h.rounds} rounds" if h.rounds > 1 else ""),
        f"{'variant':24} {'what':24} {'img/s':>10} {'ratio':>7}  {'TFLOP/s' if on_gpu else 'GFLOP/s':>9} {'MFU':>10} "
        f"{'data wait':>10}",
    ]
    for r in result.rows:
        if r.tflops is None:
            achieved, util = "-", "-"
        else:
            achieved = f"{r.tflops:.1f}" if on_gpu else f"{r.tflops * 1e3:.1f}"
            util = f"{100 * r.mfu:.1f} %" if r.mfu is not None else ("n/a" if on_gpu else "n/a (CPU)")
        wait = "-" if r.data_wait is None else f"{100 * r.data_wait:.1f} %"
        lines.append(
            f"{r.variant:24} {r.what:24} {r.images_per_sec:>10.1f} {r.ratio:>6.2f}x  {achieved:>9} {util:>10} "
            f"{wait:>10}"
        )
    lines.append(
        "ratio: training rows to the bare loop of the same variant; pipeline rows (one thread, no workers, "
        "ImageNet-sized JPEGs) to torchvision's PIL preset; data wait: the harness step's share of time waiting for "
        "the next batch (the runs' epoch metric data_wait_fraction)"
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """A bench row's target: at least `images_per_sec` with at most `data_wait` of the step waiting for data."""

    variant: str
    what: str
    size: int
    precision: str
    images_per_sec: float
    data_wait: float


# The ImageNet-scale target on one H100/H200-class GPU (docs/benchmarks.md, `scripts/gpu-check.sh`): alexnet2014 at
# 224 px from a prepared store in bf16 (the compute ceiling is ~150k images/s at ~6.3 GFLOP a training image; FFCV
# and DALI report 10-25k for nets of this size).
TARGET = Target("alexnet2014", "harness step, store", 224, "bf16", 15_000.0, 0.05)


def target_lines(results: Sequence[BenchResult], target: Target = TARGET) -> list[str]:
    """The target's row in each of `results` (every precision measured, for what fp32 gives), met or not."""
    variant, what, size, ips, wait = target.variant, target.what, target.size, target.images_per_sec, target.data_wait
    out = []
    for res in results:
        rows = [r for r in res.rows if (r.variant, r.what) == (variant, what) and res.header.size == size]
        for r in rows:
            w = "-" if r.data_wait is None else f"{100 * r.data_wait:.1f} %"
            line = f"{variant} {size} px {res.header.precision} from a store: {r.images_per_sec:,.0f} images/s"
            line += f", data wait {w}"
            if res.header.precision == target.precision:
                met = r.images_per_sec >= ips and r.data_wait is not None and r.data_wait <= wait
                line += (
                    f" (target: >= {ips:,.0f} images/s, data wait <= {100 * wait:.0f} %: {'met' if met else 'NOT met'})"
                )
            out.append(line)
    return out or [f"the target's row ({variant} {size} px, {what}) was not measured"]


def write_json(result: BenchResult, path: Path) -> None:
    try:
        path.write_text(json.dumps(asdict(result), indent=2) + "\n")
    except OSError as e:
        raise HarnessError(f"cannot write {path}: {e.strerror or e}") from None


def read_json(path: Path) -> BenchResult:
    raw = json.loads(Path(path).read_text())
    return BenchResult(BenchHeader(**raw["header"]), tuple(BenchRow(**r) for r in raw["rows"]))


def bench_command(spec: BenchSpec, json_path: Path | None, jpegs: Path | None = None) -> str:
    if json_path is not None:
        check_writable(json_path)
    if jpegs is not None:
        folders.scan_split(folders.check_dir(jpegs, "imagefolder") / "train")  # a one-line error for a bad folder
    result = run_bench(spec, jpegs)
    if json_path is not None:
        write_json(result, json_path)
    return render(result)


def names_or_default(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(names) or ("alexnet2012",)
