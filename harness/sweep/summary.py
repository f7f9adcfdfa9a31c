"""What a sweep reports: each trial's line as it ends, the whole study on the parent run (counts, the best trial's
params and value, Optuna's history and importance figures) and the summary table printed at the end."""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING

from harness import schema, tracking
from harness.sweep.searchspace import fmt
from harness.sweep.studies import typed

if TYPE_CHECKING:
    import optuna


def print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """`study.optimize` callback: one line per finished trial."""
    print(f"trial {trial.number}: {_state(trial)} {_value(trial)} {_params(trial)}", file=sys.stderr)


def _state(trial: optuna.trial.FrozenTrial) -> str:
    return {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
        trial.state.name, trial.state.name.lower()
    )


def _value(trial: optuna.trial.FrozenTrial) -> str:
    """The objective of a complete trial; a pruned or failed one's last per-epoch val_top1, as VALUE@eEPOCH."""
    if trial.value is not None and _state(trial) == "complete":
        return f"{trial.value:.2f}"
    if trial.intermediate_values:
        step = max(trial.intermediate_values)
        return f"{trial.intermediate_values[step]:.2f}@e{step}"
    return "-"


def _params(trial: optuna.trial.FrozenTrial) -> str:
    changes = typed(trial.user_attrs.get("changes") or trial.params)
    return " ".join(f"{k}={fmt(v)}" for k, v in changes.items())


def _counts(study: optuna.Study) -> dict[str, int]:
    states = [_state(t) for t in study.get_trials(deepcopy=False)]
    return {
        schema.N_TRIALS: len(states),
        schema.N_COMPLETE: states.count("complete"),
        schema.N_PRUNED: states.count("pruned"),
        schema.N_FAILED: states.count("failed"),
    }


def record(study: optuna.Study, parent: tracking.Tracker) -> optuna.trial.FrozenTrial | None:
    """Counts over the whole study, the best trial's params and value, and the two figures, on the parent run."""
    parent.log_metrics({k: float(v) for k, v in _counts(study).items()})
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "complete"]
    best = study.best_trial if complete else None
    if best is not None:
        changes = typed(best.user_attrs.get("changes") or best.params)
        parent.log_params(
            {schema.BEST_PREFIX + k: fmt(v) if isinstance(v, tuple) else str(v) for k, v in changes.items()}
        )
        parent.log_metrics({schema.BEST_VAL_TOP1: float(best.value), schema.BEST_TRIAL: float(best.number)})
        parent.set_tags(
            {schema.BEST_TRIAL: str(best.number), schema.TAG_BEST_RUN_ID: str(best.user_attrs.get("mlflow_run_id", ""))}
        )
    notes = []
    for artifact, draw in (("optimization_history.png", _history_figure), ("param_importances.png", _importances)):
        try:
            if len(complete) < 2:
                raise ValueError(f"needs 2 complete trials, the study has {len(complete)}")
            parent.log_figure(draw(study), artifact)
        except Exception as e:  # noqa: BLE001 - a figure must not lose the sweep's results
            notes.append(f"{artifact}: not drawn ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    if notes:
        parent.set_tags({schema.TAG_FIGURES_NOTE: "; ".join(notes)})
        for n in notes:
            print(f"note: {n}", file=sys.stderr)
    return best


def _optuna_figure(plot, study: optuna.Study):
    """Draw one of optuna's matplotlib plots off screen (Agg) and return its closed Figure, 8 x 4.5 in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # few trials: optuna warns that importances are (near) equal; the plot says so
        warnings.simplefilter("ignore")
        ax = plot(study, target_name="val top-1 (%)")
    fig = ax.figure
    fig.set_size_inches(8, 4.5)
    fig.tight_layout()
    plt.close(fig)
    return fig


def _history_figure(study: optuna.Study):
    from optuna.visualization.matplotlib import plot_optimization_history

    return _optuna_figure(plot_optimization_history, study)


def _importances(study: optuna.Study):
    from optuna.visualization.matplotlib import plot_param_importances

    return _optuna_figure(plot_param_importances, study)


def summary_table(study: optuna.Study, first_new: int = 0) -> str:
    """One line per trial of the whole study (* = run by this command), then the best."""
    head = f"  {'trial':>5} {'state':9} {'val_top1':>10} {'min':>5}  params"
    lines = [f"study {study.study_name}", head, "  " + "-" * (len(head) + 30)]
    for t in study.get_trials(deepcopy=False):
        mark = "*" if t.number >= first_new else " "
        minutes = "-" if "seconds" not in t.user_attrs else f"{t.user_attrs['seconds'] / 60:.1f}"
        lines.append(f"{mark} {t.number:>5} {_state(t):9} {_value(t):>10} {minutes:>5}  {_params(t)}")
    c = _counts(study)
    running = c[schema.N_TRIALS] - c[schema.N_COMPLETE] - c[schema.N_PRUNED] - c[schema.N_FAILED]
    lines.append(
        f"\n{c[schema.N_TRIALS]} trials: {c[schema.N_COMPLETE]} complete, {c[schema.N_PRUNED]} pruned, "
        f"{c[schema.N_FAILED]} failed" + (f", {running} running (another process)" if running else "")
    )
    complete = [t for t in study.get_trials(deepcopy=False) if _state(t) == "complete"]
    if complete:
        b = study.best_trial
        lines.append(f"best: trial {b.number}, val_top1 {b.value:.2f} ({_params(b)})")
    return "\n".join(lines)
