"""The report's "Qualitative evaluation" section (KSH12 s6.1): the tower verdict, colour, retrieval, codes and
translation tables of the analysed runs, and their figures. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from harness import schema
from harness.report import fmt, qual
from harness.report.types import ReportInputs, RunRow

QUALITATIVE = (
    "KSH12 s6.1's observations of a trained net, measured by `harness analyze` (or at the end of `harness run` where "
    "the profile says so) on the run's final weights: conv1's colour index per tower (the share of a kernel's energy "
    "off the grey axis after removing its mean: 0 grey, 1 colour only, 2/3 for random weights); nearest training "
    "images by Euclidean distance of the last hidden layer's activations (fc7) against raw pixels (area-averaged to "
    "at most 32 px a side), precision@k = share of the k nearest of the query's class; the same retrieval with "
    "binary codes from small auto-encoders on fc7 and on pixels (Hamming distance; query time = search only, on "
    "the machine that ran the analysis); validation top-1 with the centre view moved sideways (the uncovered border "
    "is the training mean)."
)
QUAL_FIGURE_LABELS = {
    "colour.png": "conv1 by colour index",
    "top5.png": "top-5 examples",
    "retrieval_fc7.png": "nearest by fc7",
    "retrieval_pixels.png": "nearest by pixels",
    "codes.png": "codes",
    "translation.png": "top-1 against shift",
}


def section_qualitative(inputs: ReportInputs, rows: Sequence[RunRow]) -> list[str]:
    out = ["## Qualitative evaluation", "", QUALITATIVE, ""]
    runs = qual.analysed(rows)
    if not runs:
        return out + ["No analysed runs: `python -m harness analyze RUN_ID` adds a finished run's.", ""]
    out += _towers(runs) + _colour(runs) + _retrieval(runs) + _translation(runs) + _figures(inputs, runs)
    return out


def _towers(runs: Sequence[RunRow]) -> list[str]:
    """The tower verdict (KSH12 s6.1, Fig. 3) of each two-tower variant, with its seeds."""
    out = ["### Tower colour specialisation (KSH12 s6.1, Fig. 3)", "", qual.TOWER_RULE, ""]
    verdicts = qual.tower_verdicts(runs)
    for v in verdicts:
        out += [
            f"`{v.variant}`, {v.data} {v.split}: **{v.verdict}** ({v.n_specialised} of {len(v.seeds)} seeds "
            "specialised)."
            + (
                " Every tower's mean is within 0.05 of a random kernel's 2/3: conv1 has barely moved from its "
                "initialisation, so these runs say little about the claim either way."
                if v.near_random
                else ""
            ),
            "",
        ]
        out += fmt.table(
            ["seed", "run", "tower means", "spread", "greyer tower", "specialised"],
            (
                [
                    fmt.DASH if s.seed is None else str(s.seed),
                    f"`{fmt.short_id(s.run_id)}`",
                    " / ".join(f"{m:.3f}" for m in s.means),
                    f"{s.spread:.3f}",
                    str(s.greyer),
                    "yes" if s.specialised else "no",
                ]
                for s in v.seeds
            ),
        )
        out.append("")
    if not verdicts:
        out += ["No analysed two-tower run: no verdict.", ""]
    return out


def _colour(runs: Sequence[RunRow]) -> list[str]:
    """The mean colour index of every conv1 kernel, per run."""
    out = ["Mean colour index of all conv1 kernels (one-tower nets: their only distribution):", ""]
    out += fmt.table(
        ["variant", "data", "seed", "towers", "mean colour index"],
        (
            [f"`{r.variant}`", f"{r.data} {r.split}", fmt.DASH if r.seed is None else str(r.seed),
             fmt.DASH if q.towers is None else str(q.towers), fmt.num(q.colour_mean, 3)]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    return out


def _retrieval(runs: Sequence[RunRow]) -> list[str]:
    """Retrieval by fc7 against pixels, and by binary codes (KSH12 s6.1, Fig. 4 right)."""
    wins, n = qual.fc7_wins(runs)
    out = ["", "### Retrieval and compressed codes (KSH12 s6.1, Fig. 4 right)", ""]
    out += [f"fc7 retrieves more same-class neighbours than raw pixels (precision@10) in {wins} of {n} runs.", ""]
    header = ["variant", "data", "seed"] + [f"{rep} p@{k}" for rep in ("fc7", "pixels") for k in schema.QUAL_KS]
    out += fmt.table(
        header,
        (
            [f"`{r.variant}`", f"{r.data} {r.split}", fmt.DASH if r.seed is None else str(r.seed)]
            + [fmt.num(getattr(q.stat(rep), f"p{k}", None), 3) for rep in ("fc7", "pixels") for k in schema.QUAL_KS]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    out += [
        "",
        "Binary codes (auto-encoders, Hamming distance) against raw vectors: precision@10 and ms per query.",
        "",
    ]
    out += fmt.table(
        ["variant", "seed", "bits"] + [f"{rep} p@10 / ms" for rep in schema.QUAL_REPS],
        (
            [f"`{r.variant}`", fmt.DASH if r.seed is None else str(r.seed), fmt.DASH if q.code_bits is None else
             str(q.code_bits)] + [_p10_ms(q.stat(rep)) for rep in schema.QUAL_REPS]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    return out


def _translation(runs: Sequence[RunRow]) -> list[str]:
    """Top-1 with the centre view shifted (KSH12 s6.1's translation invariance), per run."""
    out = ["", "### Translation invariance (KSH12 s6.1)", ""]
    out += ["Validation top-1 (%) with the centre view moved by k/16 of its side (negative: left).", ""]
    out += fmt.table(
        ["variant", "data", "seed"] + [f"{s:+d}/16" for s in schema.QUAL_SHIFT_STEPS],
        (
            [f"`{r.variant}`", f"{r.data} {r.split}", fmt.DASH if r.seed is None else str(r.seed)]
            + [fmt.num(dict(q.shift_top1).get(s), 1) for s in schema.QUAL_SHIFT_STEPS]
            for r in runs if (q := r.qualitative) is not None
        ),
    )  # fmt: skip
    out.append("")
    return out


def _figures(inputs: ReportInputs, runs: Sequence[RunRow]) -> list[str]:
    """The figures of one analysed run per variant, and how long the analyses took."""
    out: list[str] = []
    figs = inputs.figures.qualitative
    if figs:
        out += ["### Figures (one analysed run per variant, lowest seed)", ""]
        for (data, split, variant), paths in sorted(figs.items()):
            out += [f"`{variant}`, {data} {split}: " + ", ".join(f"[{QUAL_FIGURE_LABELS.get(n, n)}]({p})"
                                                                   for n, p in paths), ""]  # fmt: skip
            out += [" ".join(f"![{variant} {QUAL_FIGURE_LABELS.get(n, n)}]({p})" for n, p in paths), ""]
    seconds = [q.seconds for r in runs if (q := r.qualitative) is not None and q.seconds is not None]
    if seconds:
        out += [f"The analyses took {min(seconds):.0f}-{max(seconds):.0f} s per run ({len(seconds)} runs).", ""]
    return out


def _p10_ms(s) -> str:
    if s is None:
        return fmt.DASH
    return f"{fmt.num(s.p10, 3)} / {fmt.num(s.query_ms, 3)}"
