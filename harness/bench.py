"""`harness bench`: training images/s of a bare PyTorch loop against the harness's own step, the input pipeline per
CPU core against torchvision's PIL preset, and achieved TFLOP/s and MFU (harness.flops), in one process.

Rows, per variant: (a) the bare loop (the limit: model, fused SGD, cross-entropy on one random batch already on the
device); (b) the harness's step on the same shapes (`harness_step_ips`); (c) the input pipeline alone, one thread,
no workers, on ImageNet-sized JPEGs (harness.photos): torchvision's preset once, the harness's path per variant's
recipe (`harness_pipeline_ips`). Warm-up steps are not timed; on a GPU every timing ends with a synchronize.
"""

from __future__ import annotations

import contextlib
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

from harness import data, engine, flops, memory, photos
from harness.config import RunConfig
from harness.distributed import Dist
from harness.errors import HarnessError
from harness.progress import Progress
from harness.transforms import MEAN, STD, TrainTransform
from variants import UnknownVariantError, Variant, get_variant

WARMUP_STEPS = 3
PIPELINE_CLASSES = 10
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
    what: str  # "bare loop", "harness step", "torchvision PIL preset", "harness pipeline"
    images_per_sec: float
    ratio: float  # to `vs` (same variant)
    vs: str  # "bare loop" for training rows, "torchvision PIL preset" for pipeline rows
    tflops: float | None = None  # achieved model TFLOP/s (training rows)
    mfu: float | None = None  # fraction of the GPU's dense peak; None on the CPU or an unknown GPU


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


@contextlib.contextmanager
def tf32_flags(name: str) -> Iterator[None]:
    """tf32: TF32 matmuls and convolutions on CUDA (no effect on a CPU); fp32 and bf16: both switches off
    (PyTorch's default lets cuDNN convolutions use TF32, which would make "fp32" TF32)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def autocast(name: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16: torch.autocast to bfloat16 (CUDA and CPU); otherwise nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=name == "bf16")


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
    batch already on the device; cuDNN autotuning on (the limit)."""
    torch.manual_seed(0)
    model = v.build(NUM_CLASSES).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4, fused=True)
    x = torch.randn(spec.batch_size, 3, spec.size, spec.size, device=device)
    y = torch.randint(0, NUM_CLASSES, (spec.batch_size,), device=device)

    def steps(n: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(n):
                with autocast(spec.precision, device):
                    loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        return run

    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        with tf32_flags(spec.precision):
            timed(steps(WARMUP_STEPS), device)
            return spec.batch_size * spec.steps / timed(steps(spec.steps), device)
    finally:
        torch.backends.cudnn.benchmark = benchmark


def harness_step_ips(v: Variant, spec: BenchSpec, device: torch.device) -> float:
    """images/s of the harness's own training: `engine.train_one_epoch` over `engine.train_loader` (the run's
    workers: 0) of an in-memory uint8 `data.ArrayDataset` of the bench's shapes, with the recipe's model init,
    optimiser groups and per-step work (ZF13 renormalisation), and the harness's array transform (a crop that is the
    whole image, a flip, normalisation). The engine has no precision switch on this branch: bf16 is an autocast
    around the epoch. The one function to re-wire when the data path and engine change (issue 13)."""
    recipe = replace(v.recipe, batch_size=spec.batch_size)
    cfg = RunConfig(
        variant=v.name,
        paper=v.paper,
        profile="bench",
        dataset="synthetic",
        dataset_name="random uint8",
        data_dir=None,
        recipe=recipe,
        flip=True,
        seed=0,
        device=device.type,
    )
    d = Dist(0, 1, 0, device)
    transform = TrainTransform("ksh12", spec.size, spec.size, flip=True, lighting=None, prepared=True)
    g = torch.Generator().manual_seed(0)

    def dataset(batches: int) -> data.ArrayDataset:
        n = batches * spec.batch_size
        images = torch.randint(0, 256, (n, 3, spec.size, spec.size), dtype=torch.uint8, generator=g)
        return data.ArrayDataset(
            images, torch.randint(0, NUM_CLASSES, (n,), generator=g).tolist(), transform, spec.size
        )

    model = engine.prepare_model(v, NUM_CLASSES, recipe, seed=0).to(device)
    opt = engine.build_optimizer(model, recipe, cfg.effective_lr)
    scheduler = engine.build_scheduler(opt, recipe, spec.steps)
    warm, timed_set = dataset(WARMUP_STEPS), dataset(spec.steps)

    def epoch(ds: data.ArrayDataset, e: int) -> Callable[[], None]:
        def run() -> None:
            loader = engine.train_loader(ds, cfg, d, e)
            with tf32_flags(spec.precision), autocast(spec.precision, device):
                engine.train_one_epoch(model, loader, opt, d, recipe, Progress("bench", 0, enabled=False), scheduler)

        return run

    try:
        timed(epoch(warm, 0), device)
        return spec.batch_size * spec.steps / timed(epoch(timed_set, 1), device)
    except engine.Diverged as e:
        raise HarnessError(f"{v.name}: the harness step diverged on random data ({e})") from None


# --- (c) the input pipeline per core --------------------------------------------------------------------------------


def items_per_sec(dataset: torch.utils.data.Dataset, n: int) -> float:
    """Items/s of dataset[i] over `n` items in a seeded order (after 2 untimed), cycling when it is shorter."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()  # type: ignore[arg-type]
    for i in order[:2]:
        dataset[i]
    start = time.perf_counter()
    for k in range(n):
        dataset[order[k % len(order)]]
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


def harness_pipeline_ips(v: Variant, root: Path, size: int, n: int) -> float:
    """The harness's own input path for `v`'s recipe: `data.load_datasets` on the folder (its up-front decode check
    of every file is not timed), then training items one by one. The one function to re-wire when the data path
    changes (issue 13: a prepared store, device-side augmentation)."""
    r = v.recipe
    resize = max(size, round(size * r.resize / r.crop))  # the recipe's resize:crop ratio (256:224) at this size
    spec = data.DataSpec(
        "imagefolder",
        root,
        image_size=size,
        resize=resize,
        train_aug=r.train_aug,
        pca_lighting=r.pca_lighting,
        pca_alpha_std=r.pca_alpha_std,
        input_scale=r.input_scale,
    )
    return items_per_sec(data.load_datasets(spec, "center").train, n)


# --- the whole bench ------------------------------------------------------------------------------------------------


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def training_row(v: Variant, what: str, ips: float, bare: float, spec: BenchSpec, device: torch.device) -> BenchRow:
    per_image = flops.variant_flops_per_image(v, spec.size, NUM_CLASSES)
    achieved = ips * per_image / 1e12
    peak = flops.peak_tflops(torch.cuda.get_device_name(device), spec.precision) if device.type == "cuda" else None
    util = flops.mfu(ips, per_image, peak) if peak else None
    return BenchRow(v.name, what, ips, ips / bare, "bare loop", achieved, util)


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
    for v in variants:
        bares, harness = [], []
        for _ in range(spec.rounds):
            bares.append(bare_loop_ips(v, spec, device))
            harness.append(harness_step_ips(v, spec, device))
        bare = statistics.median(bares)
        rows.append(training_row(v, "bare loop", bare, bare, spec, device))
        rows.append(training_row(v, "harness step", statistics.median(harness), bare, spec, device))
    if spec.images > 0:
        with contextlib.ExitStack() as stack:
            if jpeg_root is None:
                jpeg_root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-jpegs-")))
                per_class = -(-spec.images // PIPELINE_CLASSES)
                photos.imagenet_like_jpegs(jpeg_root, per_class, PIPELINE_CLASSES, splits=("train",))
                photos.imagenet_like_jpegs(jpeg_root, 1, PIPELINE_CLASSES, splits=("val",))
            with threads(1):  # per core: one thread, no workers; alternated like (a) and (b)
                refs: list[float] = []
                own: dict[str, list[float]] = {v.name: [] for v in variants}
                for _ in range(spec.rounds):
                    refs.append(torchvision_pipeline_ips(jpeg_root, spec.size, spec.images))
                    for v in variants:
                        own[v.name].append(harness_pipeline_ips(v, jpeg_root, spec.size, spec.images))
            reference = statistics.median(refs)
            rows.append(BenchRow("-", "torchvision PIL preset", reference, 1.0, "torchvision PIL preset"))
            for name, rates in own.items():
                ips = statistics.median(rates)
                rows.append(BenchRow(name, "harness pipeline", ips, ips / reference, "torchvision PIL preset"))
    return BenchResult(header, tuple(rows))


# --- output ---------------------------------------------------------------------------------------------------------


def render(result: BenchResult) -> str:
    h = result.header
    on_gpu = not h.device.startswith("cpu")
    lines = [
        f"device {h.device} | torch {h.torch} | {h.threads} threads | precision {h.precision} | "
        f"{h.size} px, batch {h.batch_size}, {h.steps} timed steps"
        + (f", median of {h.rounds} rounds" if h.rounds > 1 else ""),
        f"{'variant':24} {'what':24} {'img/s':>10} {'ratio':>7}  {'TFLOP/s' if on_gpu else 'GFLOP/s':>9} {'MFU':>10}",
    ]
    for r in result.rows:
        if r.tflops is None:
            achieved, util = "-", "-"
        else:
            achieved = f"{r.tflops:.1f}" if on_gpu else f"{r.tflops * 1e3:.1f}"
            util = f"{100 * r.mfu:.1f} %" if r.mfu is not None else ("n/a" if on_gpu else "n/a (CPU)")
        lines.append(f"{r.variant:24} {r.what:24} {r.images_per_sec:>10.1f} {r.ratio:>6.2f}x  {achieved:>9} {util:>10}")
    lines.append(
        "ratio: training rows to the bare loop of the same variant; pipeline rows (one thread, no workers, "
        "ImageNet-sized JPEGs) to torchvision's PIL preset"
    )
    return "\n".join(lines)


def write_json(result: BenchResult, path: Path) -> None:
    try:
        path.write_text(json.dumps(asdict(result), indent=2) + "\n")
    except OSError as e:
        raise HarnessError(f"cannot write {path}: {e.strerror or e}") from None


def read_json(path: Path) -> BenchResult:
    raw = json.loads(Path(path).read_text())
    return BenchResult(BenchHeader(**raw["header"]), tuple(BenchRow(**r) for r in raw["rows"]))


def bench_command(spec: BenchSpec, json_path: Path | None) -> str:
    if json_path is not None:
        check_writable(json_path)
    result = run_bench(spec)
    if json_path is not None:
        write_json(result, json_path)
    return render(result)


def names_or_default(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(names) or ("alexnet2012",)
