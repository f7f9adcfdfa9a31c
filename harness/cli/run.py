"""`harness run`: its options, in groups, and its handler: the request to `harness.runner` (or the `--jobs` pool, or
submitit jobs), the outcomes back, then the report."""

from __future__ import annotations

import argparse
import os
import typing
from dataclasses import replace
from pathlib import Path

from harness import mlruns
from harness.cli.common import (
    Options,
    Subparsers,
    add_data_options,
    add_recipe_options,
    add_ui_url_option,
    child_options,
    non_negative_int,
    parent_only,
    positive_float,
    positive_int,
    request,
)
from harness.cli.report import write_report
from harness.errors import HarnessError
from harness.request import PARALLELS, RunRequest

if typing.TYPE_CHECKING:
    from harness.runs.batch import RunResult


def add_run(sub: Subparsers) -> None:
    """`harness run NAMES | --all`: its options in groups, each added by one function below."""
    p = sub.add_parser("run", help="train and evaluate variants with their recipes, tracked in MLflow")
    train = _add_what_to_train(p)
    recipe = p.add_argument_group("recipe changes")
    data = p.add_argument_group("data")
    seeds = p.add_argument_group("seeds and plan")
    execution = p.add_argument_group("execution")
    tracking = p.add_argument_group("tracking and report")
    add_data_options(data, execution=execution, tracking=tracking)
    add_recipe_options(recipe, seeds=seeds)
    _add_sweep_source(train)
    _add_seeds(seeds)
    _add_execution(execution)
    _add_tracking(tracking)
    _add_many_runs(p.add_argument_group("many runs: worker processes on this node, or submitit jobs"))
    p.set_defaults(func=cmd_run, run_parser=p)


def _add_what_to_train(p: argparse.ArgumentParser) -> Options:
    g = p.add_argument_group("what to train")
    g.add_argument("names", nargs="*", help="variant names (see `harness list`)")
    parent_only(g.add_argument("--all", action="store_true", help="every registered variant"))
    return g


def _add_sweep_source(g: Options) -> None:
    g.add_argument("--from-sweep", help="run the best trial of this sweep study (tagged as tuned)")
    g.add_argument("--sweep-storage", help="the --from-sweep study's storage, as `sweep --storage` took it")


def _add_seeds(g: Options) -> None:
    parent_only(
        g.add_argument(
            "--seeds",
            type=positive_int,
            metavar="N",
            help="train seeds 0..N-1 of each variant (default: one seed; `--all` on the proxy and paper profiles "
            "follows the plan: `--plan` prints it)",
        )
    )
    parent_only(
        g.add_argument(
            "--seed-offset",
            type=non_negative_int,
            default=0,
            metavar="K",
            help="add K to every seed (the plan's, --seed's or --seeds'): `run --all --seed-offset 100` trains the "
            "same plan on seeds 100, 101, ..., an independent draw to check that the verdicts replicate",
        )
    )
    parent_only(
        g.add_argument(
            "--max-seeds",
            type=positive_int,
            default=15,
            metavar="N",
            help="`run --all` on the paper profile: train at most N seeds of any variant (default 15: 3 ensembles "
            "of KSH12's 5 CNNs); a claim that needs more says so in the plan",
        )
    )
    parent_only(
        g.add_argument("--plan", action="store_true", help="print the runs (variant, seeds, why) and train nothing")
    )


def _add_execution(g: Options) -> None:
    """How a run executes: the same recipe and the same run identity (precision aside: a recorded deviation)."""
    g.add_argument(
        "--compile", action="store_true", help="torch.compile the model (same recipe and run; compiling takes a while)"
    )
    g.add_argument(
        "--parallel",
        choices=PARALLELS,
        default="none",
        help="under torchrun: none (DDP, default), towers (KSH12: one tower per rank, 2 ranks per replica) or "
        "hybrid (OWT14: data-parallel convs, model-parallel fc6/fc7)",
    )
    g.add_argument(
        "--dist-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="under torchrun: how long a collective waits for a rank that does not arrive (default: torch's 600)",
    )
    g.add_argument("--checkpoint-dir", help="where per-epoch training checkpoints go (default: beside the store)")
    g.add_argument(
        "--wait",
        action="store_true",
        help="a configuration another process is training: wait for it to finish (default: refuse, naming its PID)",
    )


def _add_tracking(g: Options) -> None:
    g.add_argument(
        "--register",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="register each run's final weights in MLflow's Model Registry under the variant's name "
        "(default: on for the paper profile)",
    )
    g.add_argument(
        "--keep-weights",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log each run's final weights as checkpoint/final.pt, what `eval --run-id`, `analyze` and the report's "
        "kernels read (default: on, off for the smoke profile; --register keeps them)",
    )
    g.add_argument(
        "--system-metrics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log MLflow's system metrics (CPU, memory, GPU) while training "
        "(default: on for the paper and proxy profiles)",
    )
    add_ui_url_option(g)
    parent_only(g.add_argument("--no-report", action="store_true", help="do not write the report at the end"))


def _add_many_runs(g: Options) -> None:
    """`--jobs`/`--gpus` (`harness.pool`: worker processes) or `--launcher` (`harness.launch`: submitit jobs)."""
    parent_only(
        g.add_argument(
            "--jobs",
            type=positive_int,
            metavar="N",
            help="run N (variant, seed) runs at a time, each in its own process (one node; see --gpus)",
        )
    )
    parent_only(
        g.add_argument(
            "--gpus",
            metavar="0,1,...",
            help="one run at a time per listed GPU, each process seeing only that GPU (CUDA_VISIBLE_DEVICES); sets "
            "--jobs",
        )
    )
    g.add_argument(
        "--launcher",
        choices=("local", "slurm"),
        help="one submitit job per (variant, seed): slurm (a job array; requeued at the time limit) or local "
        "(submitit's local executor, the same code path on this machine)",
    )
    g.add_argument("--partition", help="--launcher slurm: the Slurm partition")
    g.add_argument("--time", type=positive_int, default=24 * 60, metavar="MIN", help="each job's time limit (1440)")
    g.add_argument("--nodes", type=positive_int, default=1, help="nodes per job: one data-parallel run (default 1)")
    g.add_argument(
        "--gpus-per-node",
        type=non_negative_int,
        default=0,
        help="GPUs per job and node, one data-parallel rank each (default 0)",
    )
    g.add_argument("--cpus-per-task", type=positive_int, help="CPUs per rank (data loading workers + 1)")
    g.add_argument("--array-parallelism", type=positive_int, default=8, help="array tasks at once (default 8)")
    # a --jobs worker's, set by the pool: the batch run it belongs to, where it reports its outcomes
    parent_only(g.add_argument("--parent-run-id", help=argparse.SUPPRESS))
    parent_only(g.add_argument("--outcomes-json", help=argparse.SUPPRESS))


def run_seeds(args: argparse.Namespace) -> int | None:
    """`--seeds N`: N seeds from 0; `--seed S`: that one seed; neither: None (the plan decides)."""
    if args.seeds is not None and args.seed is not None:
        raise HarnessError("give either --seed S (one seed) or --seeds N (seeds 0..N-1), not both")
    return args.seeds if args.seeds is not None else (1 if args.seed is not None else None)


def cmd_run(args: argparse.Namespace) -> int:
    from harness import runner

    req = request(RunRequest, args, seeds=run_seeds(args))
    if problem := mlruns.shared_sqlite_problem(req.uri, os.environ):
        raise HarnessError(problem)
    if args.plan:
        print(runner.describe_plan(req))
        return 0
    if args.from_sweep:
        req = tuned(req, args.from_sweep, args.sweep_storage)
    result = runner.run_stages(req, lambda r: carry_out(r, args))  # the paper plan's two stages, or one
    if args.outcomes_json and result.is_main:  # a `--jobs` worker: the pool prints the one summary
        from harness import pool

        pool.write_outcomes(Path(args.outcomes_json), result.outcomes)
    if not result.is_main:
        return 0  # rank 0 reports the outcomes: a non-zero exit here would make torchrun stop rank 0 mid-report
    print(runner.summary(result))
    code = 1 if result.failed else 0
    if not args.no_report:
        out = Path("reports") / f"{result.experiment}.md"
        code = max(code, write_report(result.uri, [result.experiment], out, req.ui_url, result.parent, result.exp_id))
    return code


def tuned(req: RunRequest, study: str, storage: str | None) -> RunRequest:
    """`--from-sweep STUDY`: the study's best trial's recipe changes under the ones given (`--set` wins)."""
    from harness.sweep.studies import best_params

    if len(req.names) != 1 or req.all:
        raise HarnessError("--from-sweep runs one variant: name the variant the sweep tuned")
    best = best_params(study, req.uri, variant=req.names[0], storage_url=storage)
    return replace(req, sets={**best, **req.sets}, tuned_from=study)


def carry_out(req: RunRequest, args: argparse.Namespace) -> RunResult:
    """In this process (`harness.runner`), in worker processes (`--jobs`/`--gpus`: `harness.pool`) or in submitit
    jobs (`--launcher`: `harness.launch`)."""
    from harness import runner

    if args.launcher and (args.jobs or args.gpus):
        raise HarnessError("give --launcher (submitit jobs) or --jobs/--gpus (processes on this node), not both")
    if args.launcher:
        from harness import launch

        res = launch.Resources(
            args.partition, args.time, args.nodes, args.gpus_per_node, args.cpus_per_task, args.array_parallelism
        )
        return launch.run_launched(req, args.launcher, res)
    if args.jobs or args.gpus:
        from harness import pool

        return pool.run_pool(req, child_options(args), args.jobs, args.gpus)
    return runner.run_variants(req)
