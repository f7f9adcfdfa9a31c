"""The report's "Proxy results" section: per proxy data set the variants ranked by top-1, whether each learned, and
the train-validation gap; then "Sweeps": each study's best beside the paper recipe. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.report import fmt, gap
from harness.report.proxy import ProxyRow, proxy_table
from harness.report.runs import data_label, plain_runs
from harness.report.sweeps import sweep_note
from harness.report.types import ReportInputs, RunRow, SweepRow

PROXY = (
    "Accuracy on data sets no paper reports on. Ranked by top-1 under each variant's own test protocol; "
    "`center top-1` puts every variant on one protocol. An ablation's change is its mean top-1 minus its "
    "base variant's, both under the base's protocol. These numbers check that the harness trains each "
    "variant; they are not reproductions."
)


def _not_learned(runs: Sequence[RunRow]) -> str:
    """Why a run counts as not learned, from its own numbers: loss at ln(C) (chance) or loss elsewhere."""
    classes = sorted({r.num_classes for r in runs if r.num_classes})
    if len(classes) != 1:
        return "val top-1 near chance"
    c = classes[0]
    chance = f"ln({c}) = {math.log(c):.2f}"
    losses = [r.train_loss[-1][1] for r in runs if r.train_loss]
    if losses and all(abs(x - math.log(c)) <= 0.1 * math.log(c) for x in losses):
        return f"loss stayed at {chance}"
    last = ", ".join(f"{x:.2f}" for x in losses)
    return f"val top-1 near chance ({100 / c:g} %)" + (
        f"; final training loss {last} (chance: {chance})" if last else ""
    )


def _learned(p: ProxyRow, rows: Sequence[RunRow], inputs: ReportInputs, data: str, split: str) -> str:
    mine = [r for r in rows if r.run_id in p.run_ids]
    if not p.not_learned:
        return "yes" if any(r.learned is not None for r in mine) else fmt.DASH
    curve = inputs.figures.curves.get((data, split, p.variant))
    link = f" ([curve]({curve}))" if curve else ""
    share = "" if p.not_learned == len(p.run_ids) else f"{p.not_learned} of {len(p.run_ids)} runs "
    return f"**{share}did not learn**: {_not_learned([r for r in mine if r.learned == 0.0])}{link}"


def section_proxy(inputs: ReportInputs, rows: Sequence[RunRow], proxies: list[tuple[str, str]]) -> list[str]:
    out = ["## Proxy results", ""]
    if not proxies:
        return out + ["No run used a proxy data set.", ""]
    out += [PROXY, ""]
    for data, split in proxies:
        ranked = proxy_table(rows, inputs.variants, data, split)
        body = []
        for i, p in enumerate(ranked, start=1):
            runs = f" ({p.unfinished} of {p.runs} runs unfinished)" if p.unfinished else ""
            change = fmt.DASH if p.base is None else f"{fmt.signed(p.change)} vs `{p.base}`"
            body.append(
                [
                    str(i) if p.top1 else fmt.DASH,
                    f"`{p.variant}`",
                    fmt.protocol(p.protocol),
                    fmt.stat(p.top1) + runs,
                    fmt.stat(p.top5),
                    fmt.stat(p.center_top1),
                    change,
                    _learned(p, rows, inputs, data, split),
                ]
            )
        out += [f"### {data_label(data, split, True)}", ""]
        out += fmt.table(
            ["rank", "variant", "protocol", "top-1", "top-5", "center top-1", "change vs base", "learned"], body
        )
        out += ["", *section_gap(rows, data, split)]
    return out


def section_gap(rows: Sequence[RunRow], data: str, split: str) -> list[str]:
    """The train-validation gap and the validation curve at fixed epochs of the runs ranked above."""
    here = [x for x in plain_runs(rows) if (x.data, x.split) == (data, split) and x.train_top1]
    found = gap.gap_rows(here)
    if not found:
        return []
    marks = sorted({e for g in found for e in g.epochs})
    out = [
        "Overfitting: the last epoch's training top-1 (in training mode: dropout on, augmented views) against its "
        "validation top-1 (centre crop), and the validation top-1 at a quarter, half, three quarters and all of the "
        "epochs, means over the finished runs. A regulariser shows as a smaller gap; the claims read the last epoch.",
        "",
    ]
    out += fmt.table(
        ["variant", "runs", "train top-1", "val top-1", "gap", *(f"val @ epoch {e}" for e in marks)],
        (
            [
                f"`{g.variant}`",
                str(g.runs),
                fmt.num(g.train_top1),
                fmt.num(g.val_top1),
                fmt.num(g.gap),
                *(fmt.num(g.curve[g.epochs.index(e)]) if e in g.epochs else fmt.DASH for e in marks),
            ]
            for g in found
        ),
    )
    return [*out, ""]


SWEEPS = (
    "Optuna studies (`harness sweep`) around a variant's recipe. `best val top-1` is the best complete trial's "
    "final top-1 under the recipe's own test protocol; `paper recipe` is the mean over seeds of finished runs with "
    "the paper's recipe of the same variant on the same data set and profile; the difference is best minus paper "
    "recipe. **Tuned values are not reproductions of the paper's recipe**: the best trial was chosen on the same "
    "validation images it is scored on, so its number is optimistic. Re-running the best in full gives a run "
    "tagged as tuned (Deviations, Tuned runs)."
)
NO_SWEEPS = (
    "No sweep was run. To run one: `python -m harness sweep VARIANT --profile PROFILE` (options `--trials`, "
    "`--space`, `--epochs`); its best is shown here beside the paper recipe."
)


def _param(value: str) -> str:
    """A logged param as `k=v` shows it: floats to 4 significant digits, anything else as logged."""
    try:
        int(value)
        return value
    except ValueError:
        pass
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def _rerun(s: SweepRow) -> str:
    profile = f" --profile {s.profile}" if s.profile else ""
    return f"`python -m harness run {s.variant} --from-sweep {s.study}{profile}`"


def _sweep_note(s: SweepRow) -> str:
    notes = []
    if s.best_value is None:
        notes.append("no complete trial")
    if s.paper is None:
        profile = f" --profile {s.profile}" if s.profile else ""
        notes.append(f"no finished paper-recipe run on this data: `python -m harness run {s.variant}{profile}`")
    else:
        notes.append(sweep_note(s.epochs, s.paper_epochs))
        notes.append(f"runs {fmt.run_ids(s.paper_run_ids)}")
    return "; ".join(n for n in notes if n)


def section_sweeps(sweeps: Sequence[SweepRow]) -> list[str]:
    out = ["## Sweeps", ""]
    if not sweeps:
        return out + [NO_SWEEPS, ""]
    out += [SWEEPS, ""]
    ordered = sorted(sweeps, key=lambda s: (s.variant, s.data, s.profile, s.study))
    out += fmt.table(
        [
            "study",
            "variant",
            "data set (profile)",
            "space",
            "trials (complete / pruned / failed)",
            "epochs",
            "best val top-1",
            "best params",
            "paper recipe top-1",
            "difference",
            "note",
            "re-run the best",
        ],
        (
            [
                f"`{s.study}`",
                f"`{s.variant}`",
                f"{s.data} (`{s.profile}`)" if s.profile else s.data,
                s.space or fmt.DASH,
                f"{s.n_complete} / {s.n_pruned} / {s.n_failed}",
                fmt.DASH if s.epochs is None else str(s.epochs),
                fmt.num(s.best_value),
                " ".join(f"{k}={_param(v)}" for k, v in s.best_params) or fmt.DASH,
                fmt.stat(s.paper),
                fmt.signed(s.diff),
                _sweep_note(s) or fmt.DASH,
                _rerun(s),
            ]
            for s in ordered
        ),
    )
    return out + [""]
