"""Subcommands beyond list/show: run, eval, ui, pca, and those that live with their concern (report, sweep)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from harness.errors import HarnessError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=["paper", "proxy", "smoke"], help="paper (default with --data), proxy "
                   "(default without: mnist5k), smoke (synthetic, seconds)")
    p.add_argument("--data", help="data folder: ImageNet-style train/ and val/ (or a CIFAR-10 folder)")
    p.add_argument("--dataset", help="imagefolder, mnist5k, cifar10 or synthetic (default from profile/--data)")
    p.add_argument("--dataset-name", help="what the data is, for the report, e.g. ILSVRC-2012 or ILSVRC-2010")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--limit-train", type=_positive_int, help="use only the first N training images (a slice)")
    p.add_argument("--limit-val", type=_positive_int, help="use only the first N validation images (a slice)")


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train and evaluate variants with their recipes, tracked in MLflow")
    p.add_argument("names", nargs="*", help="variant names (see `harness list`)")
    p.add_argument("--all", action="store_true", help="every registered variant")
    _common(p)
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int, help="global batch size (all ranks together)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="change a recipe field, e.g. --set lr=0.005 (marks the run recipe_modified)")
    p.add_argument("--checkpoint-dir", help="where per-epoch training checkpoints go (default: beside the store)")
    p.add_argument("--from-sweep", help="run the best trial of this sweep study (tagged as tuned)")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    from harness import runner
    from harness.config import parse_set

    sets = parse_set(args.sets)
    tuned_from = None
    if args.from_sweep:
        from harness.sweep import best_params

        if len(args.names) != 1 or args.all:
            raise HarnessError("--from-sweep runs one variant: name the variant the sweep tuned")
        best = best_params(args.from_sweep, args.tracking_uri, variant=args.names[0])
        sets = {**best, **sets}
        tuned_from = args.from_sweep
    opts = runner.RunOptions(
        names=args.names, all=args.all, profile=args.profile, data=args.data, dataset=args.dataset,
        dataset_name=args.dataset_name, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, sets=sets,
        device=args.device, tracking_uri=args.tracking_uri, limit_train=args.limit_train, limit_val=args.limit_val,
        workers=args.workers, checkpoint_dir=args.checkpoint_dir, report=not args.no_report, tuned_from=tuned_from,
    )
    return runner.run_command(opts)


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate given weights or a finished run's checkpoint")
    p.add_argument("variant")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="a state-dict file, or IMAGENET1K_V1 for torchvision's official weights")
    src.add_argument("--run-id", help="a finished run whose final checkpoint to evaluate")
    _common(p)
    p.add_argument("--tta", choices=["center", "ten_crop"], help="test protocol (default: the recipe's)")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from harness.evaluation_cli import eval_command

    return eval_command(args)


def add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on this store, bound to 127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--tracking-uri")
    p.set_defaults(func=_cmd_ui)


def _cmd_ui(args: argparse.Namespace) -> int:
    from harness import tracking

    uri = args.tracking_uri or tracking.default_uri()
    root = tracking.store_root(uri)
    if root is None:
        raise HarnessError(f"{uri} is not a local SQLite store: open that server's own UI instead")
    if not (root / "mlflow.db").is_file():
        raise HarnessError(f"no MLflow store at {root / 'mlflow.db'}: run `python -m harness run` first")
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--default-artifact-root",
           str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (Ctrl-C to stop)", flush=True)
    return subprocess.call(cmd, env=os.environ.copy())


def add_pca(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pca", help="compute the PCA lighting eigen-pairs of an ImageNet-style training set")
    p.add_argument("--data", required=True)
    p.set_defaults(func=lambda a: print(__import__("harness.data", fromlist=["x"]).pca_command(Path(a.data))) or 0)


def _extra() -> list:
    out = []
    try:
        from harness.report import add_parser as add_report

        out.append(add_report)
    except ImportError:
        pass
    try:
        from harness.sweep import add_parser as add_sweep

        out.append(add_sweep)
    except ImportError:
        pass
    return out


REGISTER = [add_run, add_eval, add_ui, add_pca, *_extra()]
