"""Names shared by everything that writes or reads the MLflow store: tracking, reports, sweeps.

Plain constants so that the MLflow compare view, the report and the sweep agree on one spelling.
"""

from __future__ import annotations

# The epochs a validation curve is read at, as fractions of a run's epochs (the report's train-validation gap table;
# a profile that does not evaluate every epoch evaluates these, `curve_epochs`).
CURVE_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def curve_epochs(epochs: int) -> tuple[int, ...]:
    """The epochs at `CURVE_FRACTIONS` of a run of `epochs` (at least epoch 1, each once, ascending)."""
    return tuple(dict.fromkeys(max(1, round(f * epochs)) for f in CURVE_FRACTIONS))


# Per-epoch metrics (step = epoch, 1-based). Exactly these keys (the val_* ones only at the epochs a run evaluates).
EPOCH_METRICS = (
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "lr",  # the first param group's lr averaged over the epoch's steps (per-step schedules move it every step)
    "images_per_sec",  # training images/s over the epoch, all ranks
    "epoch_seconds",
    "tflops",  # achieved training TFLOP/s (harness.flops: 6 x forward MACs per image x images/s)
    "data_wait_s",  # seconds of the epoch spent waiting for the next training batch (mean over ranks)
    "data_wait_fraction",  # data_wait_s / epoch_seconds: near 1 when the input pipeline limits the run
)
MFU = "mfu"  # per epoch on a GPU whose dense peak harness.flops knows: tflops / (world size x peak); else absent

# Training top-1 error (%) over the last few batches (engine.curve_every steps), step = training images seen so far:
# the curve KSH12 Fig. 1's speedup claim is read from (harness.report.speedup.images_to_threshold).
TRAIN_ERR = "train_err"

# Final metrics, logged once at the end of a finished run (accuracy in percent).
FINAL_TOP1 = "final_val_top1"  # under the recipe's own test protocol (tag `test_protocol`)
FINAL_TOP5 = "final_val_top5"
FINAL_LOSS = "final_val_loss"
# e.g. center_val_top1, ten_crop_val_top5: every protocol of the profile's `final_protocols` (the proxy: centre only)
PROTOCOL_METRIC = "{protocol}_val_{k}"
SKIPPED_IMAGES = "skipped_images"
LEARNED = "learned"  # 1.0 when final val top-1 is clearly above chance, else 0.0 (e.g. the stalled KSH12 init)

# Tags on every variant run.
TAG_KIND = "harness.kind"  # "batch" (the parent of run --all), "variant", "sweep", "trial"
TAG_VARIANT = "variant"
TAG_PAPER = "paper"
TAG_PROFILE = "profile"
TAG_DATASET = "dataset"
TAG_DATASET_NAME = "dataset_name"  # what the data is (e.g. ILSVRC-2012), matched against Reported.dataset
TAG_PRETRAINED = "pretrained"  # the data set a run was pretrained on (KSH12 Table 2's Fall 2011 rows)
TAG_SPLIT = "split"  # the split evaluated, e.g. "val" (mnist5k held-out 1,000, ImageNet val)
TAG_PROTOCOL = "test_protocol"
TAG_RECIPE_MODIFIED = "recipe_modified"  # "true" / "false"
TAG_MODIFIED_KEYS = "modified_keys"  # comma-separated recipe fields changed by --set or flags
TAG_TUNED_FROM = "tuned_from_sweep"  # set by `run --from-sweep S`
TAG_ABLATION_OF = "ablation_of"
TAG_CONFIG_HASH = "config_hash"
TAG_GIT = "git_commit"
TAG_TORCH = "torch_version"
TAG_DEVICE = "device"
# Tags on every run (variant, trial, sweep, batch): the machine and libraries it ran with (tracking.machine_tags).
TAG_ENV_PREFIX = "env."
TAG_ENV_CPU = "env.cpu"  # CPU model name
TAG_ENV_CPU_COUNT = "env.cpu_count"
TAG_ENV_THREADS = "env.torch_threads"  # torch.get_num_threads(): intra-op threads (the order float sums are added in)
TAG_ENV_PYTHON = "env.python"
TAG_ENV_OS = "env.os"
TAG_ENV_ACCELERATOR = "env.accelerator"  # the CUDA device's name, or "none"
TAG_ENV_RESUMED_DIFFERS = "env.resumed_differs"  # on a resumed run: the machine tags that differ from its start
ENV_LIBRARIES = ("torch", "torchvision", "numpy", "pillow", "mlflow", "optuna")  # tagged env.<name> = version
TAG_SWEEP = "sweep"  # study name, on sweep parents and trial children
TAG_TRIAL = "trial"  # trial number
TAG_TRIAL_STATE = "trial_state"  # complete / pruned / failed
TAG_SWEEP_SPACE = "sweep_space"  # the search space's name, on sweep parents and trial children
TAG_OWNER = "harness.owner"  # "PID HOST START" of the process writing the run (harness.locks.Owner): a RUNNING run
# whose owner still runs on this host is live and never closed by another process

# Sweep parents: the best trial's recipe changes as params BEST_PREFIX + field (e.g. best_lr), its value and counts.
BEST_PREFIX = "best_"
BEST_VAL_TOP1 = "best_val_top1"
BEST_TRIAL = "best_trial"  # metric and tag: the best trial's number
TAG_BEST_RUN_ID = "best_run_id"  # the best trial's MLflow run
TAG_FIGURES_NOTE = "figures_note"  # why an Optuna figure was not drawn
TAG_PARENT_RUN = "mlflow.parentRunId"  # MLflow's own nesting tag
N_TRIALS = "n_trials"
N_COMPLETE = "n_complete"
N_PRUNED = "n_pruned"
N_FAILED = "n_failed"

# The qualitative evaluation (harness.analysis, KSH12 s6.1), logged at step 0 by `harness analyze` or at the end of a
# run whose profile asks for it. REPS: the representations retrieved with (raw fc7, its binary codes, pixel codes,
# raw pixels); shifts in sixteenths of the input's side, -4..+4.
QUAL_SECONDS = "qual.seconds"  # wall time of all the analyses of one run
QUAL_COLOUR_TOWERS = "qual.colour.towers"
QUAL_COLOUR_MEAN = "qual.colour.mean"  # mean colour index of every conv1 kernel
QUAL_COLOUR_TOWER = "qual.colour.tower{tower}.mean"  # per tower (1-based) of a two-tower net
QUAL_REPS = ("fc7", "fc7_code", "pixel_code", "pixels")
QUAL_KS = (1, 5, 10)
QUAL_PRECISION = "qual.retrieval.{rep}.p_at_{k}"  # MLflow names allow no "@"
QUAL_QUERY_MS = "qual.retrieval.{rep}.query_ms"
QUAL_CODE_BITS = "qual.codes.bits"
QUAL_SHIFT_STEPS = tuple(range(-4, 5))
QUAL_SHIFT_TOP1 = "qual.translation.top1.s{step}"  # step: sixteenths of the side, e.g. s-4, s0, s4 (no "+")
ART_QUAL = "qualitative"  # folder of the figures and summary.json
QUAL_FIGURES = ("colour.png", "top5.png", "retrieval_fc7.png", "retrieval_pixels.png", "codes.png", "translation.png")
ART_QUAL_SUMMARY = "qualitative/summary.json"
# every qual.* number of an analysis as one table (columns metric, value, in pandas' "split" JSON layout, as
# mlflow.log_table writes tables); only QUAL_HEADLINE are run metrics, so that MLflow's chart view is not filled with
# 31 qual.* charts. Runs analysed before the table have every qual.* key as a metric (harness.report.read reads both).
ART_QUAL_TABLE = "qualitative/metrics.json"
QUAL_HEADLINE = (QUAL_COLOUR_MEAN, QUAL_PRECISION.format(rep="fc7", k=10), QUAL_PRECISION.format(rep="pixels", k=10))

# Artifacts (paths inside a run's artifact root).
ART_CONFIG = "config.json"
ART_CHECKPOINT = "checkpoint/final.pt"
ART_PREDICTIONS = "predictions/val_predictions.npz"  # arrays: labels, probs (float16, N x C), top5_classes, top5_probs
ART_CURVES = "curves.png"
ART_ERROR = "error.txt"

# Experiments: one per data set and profile.
EXPERIMENT_NAME = "{dataset}-{profile}"

# MLflow's own tags and names (what its UI reads; MLflow 3.17: mlflow/utils/mlflow_tags.py and the UI's bundle).
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"  # the UI opens a "custom_model_development" experiment on its runs
EXPERIMENT_KIND = "custom_model_development"
TAG_SOURCE_NAME = "mlflow.source.name"  # the UI's Source column shows its last path part: "harness run"
TAG_COMMAND = "harness.command"  # the whole command line that wrote the run
TAG_SOURCE_TYPE = "mlflow.source.type"  # LOCAL
TAG_SOURCE_GIT_COMMIT = "mlflow.source.git.commit"  # the full commit, shown beside the source
TAG_SOURCE_GIT_BRANCH = "mlflow.source.git.branch"
TAG_USER = "mlflow.user"
TAG_NOTE = "mlflow.note.content"  # the run's Description (markdown)
DATA_CONTEXT = {"train": "training", "val": "validation", "test": "testing"}  # tag mlflow.data.context per split
MODEL_NAME = "model"  # the logged model's name: the final weights (torch.export "pt2", loaded without pickle)
TAG_MODEL_DATASET = "dataset"  # on a registered model version: the data set and split the run was evaluated on
TAG_MODEL_TOP1 = "final_val_top1"  # ... and its top-1 under the recipe's protocol
TAG_MODEL_RUN = "run_id"  # ... and the run it came from
# A batch (`run --all`, or several variants): its run is a sibling of the variant runs, not their MLflow parent, so
# that the UI's runs table and charts show every variant without expanding a row; each variant run names its batch.
TAG_BATCH = "harness.batch"  # on a variant run: the batch run that trained it
PARENT_COUNT = "runs_{status}"  # on the batch run: runs_finished, runs_skipped, runs_failed, runs_pruned (step 0)
UI_WORKFLOW = "workflowType=machine_learning"  # MLflow 3.17's UI picks GenAI or model training views by this query
UI_RUN_PAGE = "{ui}/#/experiments/{experiment_id}/runs/{run_id}?" + UI_WORKFLOW  # a run's page in the MLflow UI
UI_EXPERIMENT_PAGE = "{ui}/#/experiments/{experiment_id}/runs?" + UI_WORKFLOW  # an experiment's runs table
# MLflow 3.17's compare-runs page: run ids and experiment ids as JSON arrays. Read in mlflow 3.17.2's
# server/js/build/static/js/main.c2f5f8d4.js, `getCompareRunPageRoute(e,t)`: "/compare-runs" +
# `?runs=${JSON.stringify(e)}&experiments=${JSON.stringify(t)}`; the page (1376.*.chunk.js) URI-decodes the query
# before JSON.parse, so percent-encoded arrays open the same page
UI_COMPARE_PAGE = "{ui}/#/compare-runs?runs={runs}&experiments={experiments}&" + UI_WORKFLOW
ART_REPORT = "report"  # folder on a batch's (or sweep's) parent: the markdown report and its figures
