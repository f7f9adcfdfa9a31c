"""`generate_report`: read runs and sweeps -> compute ensembles -> draw figures -> render -> write. The only impure
glue."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import mlruns, schema
from harness.catalog import measure
from harness.errors import HarnessError
from harness.report import figures, qual
from harness.report.ensembles import claim_ensemble_candidates, ensemble_accuracy, ensemble_candidates
from harness.report.read import ArtifactReader, artifacts, read_store, sweep_summaries
from harness.report.render import render
from harness.report.reported import Comparison, compare_all
from harness.report.runs import groups, order, proxy_groups
from harness.report.speedup import speedup_variants
from harness.report.stats import summarize
from harness.report.sweeps import sweep_baseline
from harness.report.types import EnsembleResult, FigurePaths, ReportInputs, RunRow, SweepRow
from variants import Claim, Variant, claims, list_variants


def default_out(experiments: Sequence[str]) -> Path:
    return Path("reports") / f"{'+'.join(figures.slug(e) for e in experiments) or 'all'}.md"


def compute_ensembles(
    reader: ArtifactReader, variants: Sequence[Variant], rows: Sequence[RunRow], claims: Sequence[Claim] = ()
) -> list[EnsembleResult]:
    """Ensembles of the reported numbers (first k runs), then the claims' disjoint ones (on proxy data of the
    proxy's size k'); each computed once (the same runs give the same candidate)."""
    proxies = {data for data, _ in proxy_groups(rows, variants)}
    candidates = ensemble_candidates(variants, rows) + claim_ensemble_candidates(claims, rows, proxies)
    out = []
    for c in dict.fromkeys(candidates):
        loaded = [reader.predictions(i) for i in c.run_ids]
        if any(p is None for p in loaded):
            continue
        labels = loaded[0][0]  # type: ignore[index]
        if any(p[0].shape != labels.shape or (p[0] != labels).any() for p in loaded):  # type: ignore[index]
            continue  # predictions of different images or orders cannot be averaged
        top1, top5 = ensemble_accuracy([p[1] for p in loaded], labels)  # type: ignore[index]
        out.append(
            EnsembleResult(c.variant, c.data, c.split, c.protocol, c.pretrained, c.run_ids, top1, top5, c.profile)
        )
    return out


def _clear(fig_dir: Path) -> None:
    """Drop figures of an earlier build so that the folder holds exactly what the report links."""
    if fig_dir.is_dir():
        for p in sorted(fig_dir.glob("*.png")):
            p.unlink()


def draw_figures(
    reader: ArtifactReader, rows: Sequence[RunRow], comparisons: Sequence[Comparison], fig_dir: Path
) -> FigurePaths:
    _clear(fig_dir)
    rel = fig_dir.name

    def link(p: Path) -> str:
        return f"{rel}/{p.name}"

    shown = [r for r in order(rows) if r.kind == "variant" and not r.recipe_modified]
    val_top1, curves, kernels = {}, {}, {}
    for data, split in groups(shown):
        here = [r for r in shown if (r.data, r.split) == (data, split)]
        g = figures.slug(f"{data}-{split}")
        if any(r.val_top1 for r in here):
            val_top1[data, split] = link(
                figures.val_top1_figure(here, f"Validation top-1, {data} {split}", fig_dir / f"val_top1_{g}.png")
            )
        for variant in sorted({r.variant for r in here}):
            mine = [r for r in here if r.variant == variant]
            if any(r.val_top1 or r.train_loss for r in mine):
                curves[data, split, variant] = link(
                    figures.variant_curves_figure(
                        mine, f"{variant}, {data} {split}", fig_dir / f"curves_{g}__{figures.slug(variant)}.png"
                    )
                )
            for r in (x for x in mine if x.finished):
                state = reader.state_dict(r.run_id)
                if state is not None:
                    paths = figures.kernel_figures(
                        state, f"{variant} conv1, {data} {split}", fig_dir / f"conv1_{g}__{figures.slug(variant)}"
                    )
                    if paths:
                        kernels[data, split, variant] = tuple(link(p) for p in paths)
                    break
    chart = link(figures.reported_figure(comparisons, fig_dir / "reproduced_vs_reported.png"))
    return FigurePaths(chart, val_top1, curves, kernels, qualitative_figures(reader, rows, fig_dir))


def qualitative_figures(
    reader: ArtifactReader, rows: Sequence[RunRow], fig_dir: Path
) -> dict[tuple[str, str, str], tuple[tuple[str, str], ...]]:
    """The qualitative figures (harness.analysis) of each variant's first analysed run (lowest seed), copied beside
    the report: (data, split, variant) -> (figure name, relative path)."""
    out: dict[tuple[str, str, str], tuple[tuple[str, str], ...]] = {}
    for r in sorted(qual.analysed(rows), key=lambda x: (x.seed if x.seed is not None else -1, x.run_id)):
        key = (r.data, r.split, r.variant)
        if key in out:
            continue
        found = []
        for name in schema.QUAL_FIGURES:
            src = reader.path(r.run_id, f"{schema.ART_QUAL}/{name}")
            if src is not None:
                dst = fig_dir / f"qual_{figures.slug(f'{r.data}-{r.split}')}__{figures.slug(r.variant)}__{name}"
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
                found.append((name, f"{fig_dir.name}/{dst.name}"))
        if found:
            out[key] = tuple(found)
    return out


def profile_deviations(reader: ArtifactReader, rows: Sequence[RunRow]) -> dict[str, tuple[str, ...] | None]:
    """The profile's deviations from config.json of the first run (by run id) of each profile that logged them."""
    out: dict[str, tuple[str, ...] | None] = {}
    for profile in sorted({r.profile for r in rows if r.profile}):
        out[profile] = None
        for r in sorted((x for x in rows if x.profile == profile and x.kind == "variant"), key=lambda x: x.run_id):
            devs = reader.profile_deviations(r.run_id)
            if devs is not None:
                out[profile] = devs
                break
    return out


def sweep_rows(
    reader: ArtifactReader, tracking_uri: str, experiments: Sequence[str] | None, rows: Sequence[RunRow]
) -> tuple[SweepRow, ...]:
    """Each sweep study's latest state, beside the paper recipe's runs of its variant on the same data and profile."""
    out = []
    for s in sweep_summaries(tracking_uri, list(experiments) if experiments else None):
        paper = sweep_baseline(s.variant, (s.dataset_name, s.dataset), s.profile, rows)
        epochs = reader.param(s.parent_run_id, "epochs")
        out.append(
            SweepRow(
                study=s.study,
                variant=s.variant,
                data=s.dataset_name or s.dataset or "unknown data",
                profile=s.profile,
                space=s.space,
                n_trials=s.n_trials,
                n_pruned=s.n_pruned,
                n_failed=s.n_failed,
                best_value=s.best_value,
                best_params=tuple(sorted(s.best_params.items())),
                epochs=int(epochs) if epochs and epochs.isdigit() else None,
                paper=summarize(r.final_top1 for r in paper),
                paper_run_ids=tuple(r.run_id for r in paper if r.final_top1 is not None),
                paper_epochs=tuple(sorted({r.epochs for r in paper if r.epochs is not None})),
            )
        )
    return tuple(sorted(out, key=lambda r: (r.variant, r.data, r.profile, r.study)))


def generate_report(
    tracking_uri: str,
    experiments: Sequence[str] | None = None,
    out_path: str | Path | None = None,
    ui_url: str | None = None,
) -> Path:
    """Write the markdown report (and its figures beside it) of the runs in `experiments`; return its path. Run ids
    link to their pages in the MLflow UI at `ui_url` (default: `mlruns.ui_url`, where `harness ui` serves it)."""
    if out_path:
        check_out(Path(out_path))
    variants, all_claims = tuple(list_variants()), tuple(claims())
    read = read_store(tracking_uri, list(experiments) if experiments else None, speedup_variants(all_claims))
    rows = read.rows
    if not rows:
        where = ", ".join(experiments) if experiments else "any experiment"
        raise HarnessError(f"no variant runs in {where} of {mlruns.display(tracking_uri)}: nothing to report")
    names = tuple(experiments) if experiments else tuple(sorted({r.experiment for r in rows}))
    out = Path(out_path) if out_path else default_out(names)
    check_out(out)
    with artifacts(tracking_uri, read.artifact_roots) as reader:
        ensembles = tuple(compute_ensembles(reader, variants, rows, all_claims))
        comparisons = compare_all(variants, rows, ensembles)
        fig_dir = out.parent / f"{out.stem}_figures"
        try:
            figs = draw_figures(reader, rows, comparisons, fig_dir)
        except OSError as e:  # a full disk, a folder removed meanwhile
            raise HarnessError(f"cannot write the report's figures into {fig_dir}: {e.strerror or e}") from None
        profiles = profile_deviations(reader, rows)
        sweeps = sweep_rows(reader, tracking_uri, experiments, rows)
    inputs = ReportInputs(
        title=", ".join(names),
        store=mlruns.display(tracking_uri),
        experiments=names,
        rows=tuple(rows),
        variants=variants,
        claims=all_claims,
        measured={v.name: measure(v) for v in variants},
        ensembles=ensembles,
        figures=figs,
        profile_deviations=profiles,
        sweeps=sweeps,
        ui_url=ui_url or mlruns.ui_url(tracking_uri),
    )
    try:
        out.write_text(render(inputs), encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"cannot write the report {out}: {e.strerror or e}") from None
    return out


def check_out(out: Path) -> None:
    """Before anything is read or drawn: `out` must be a file name (not a folder) in a folder this process can
    create and write, with room for the `<stem>_figures/` folder beside it. One HarnessError line otherwise."""
    if out.is_dir():
        raise HarnessError(f"--out {out} is a folder: give the report's file name, e.g. {out / 'report.md'}")
    folder = out.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HarnessError(f"cannot create the report folder {folder}: {e.strerror or e}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise HarnessError(f"cannot write the report into {folder}: the folder is not writable")
    if out.exists() and not os.access(out, os.W_OK):
        raise HarnessError(f"cannot write the report {out}: the file is not writable")
    figs = folder / f"{out.stem}_figures"
    if figs.exists() and not figs.is_dir():
        raise HarnessError(f"cannot put the report's figures in {figs}: a file of that name is in the way")
    if figs.is_dir() and not os.access(figs, os.W_OK | os.X_OK):
        raise HarnessError(f"cannot write the report's figures into {figs}: the folder is not writable")
    _try_writing(out, figs)


def _try_writing(out: Path, figs: Path) -> None:
    """`os.access` is not the file system's answer (root passes it everywhere, /proc and read-only mounts refuse
    anyway): make a file beside `out` and the figures folder, as the report will, and remove what this made."""
    try:
        fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise HarnessError(f"cannot write the report {out}: {e.strerror or e}") from None
    if figs.is_dir():
        return
    try:
        figs.mkdir()
    except OSError as e:
        raise HarnessError(f"cannot make the report's figures folder {figs}: {e.strerror or e}") from None
    with contextlib.suppress(OSError):
        figs.rmdir()
