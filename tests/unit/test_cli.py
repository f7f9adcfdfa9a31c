"""The command line (`harness.cli`): every subcommand, requests built in one place, a start-up free of heavy imports,
and the layering contract."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from harness import cli, spaces
from harness.config import choose_profile
from harness.errors import HarnessError
from harness.request import DataRequest, EvalRequest, RunRequest, SweepRequest

SUBCOMMANDS = {"list", "show", "run", "eval", "sweep", "report", "ui", "pca", "prepare", "bench", "analyze", "server"}


def _subcommands(parser) -> set[str]:
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return set(action.choices)


def test_every_subcommand_is_registered_by_the_cli_module() -> None:
    assert _subcommands(cli.build_parser()) == SUBCOMMANDS


def test_run_arguments_become_one_frozen_request() -> None:
    args = cli.build_parser().parse_args(
        [
            "run",
            "zfnet",
            "alexnet2012",
            "--epochs",
            "2",
            "--set",
            "lr=0.02",
            "--profile",
            "smoke",
            "--limit-val",
            "5",
            "--seed",
            "3",
        ]
    )
    req = cli.request(RunRequest, args)
    assert req.names == ("zfnet", "alexnet2012") and req.profile == "smoke" and req.limit_val == 5 and req.seed == 3
    assert dict(req.sets) == {"lr": 0.02} and req.changes() == {"lr": 0.02, "epochs": 2}
    with pytest.raises(AttributeError):
        req.seed = 4  # type: ignore[misc]


def test_sweep_request_is_a_run_request_for_one_variant() -> None:
    args = cli.build_parser().parse_args(
        ["sweep", "zfnet", "--trials", "2", "--space", "lr", "--set", "momentum=0.8", "--dataset", "synthetic"]
    )
    req = cli.request(SweepRequest, args, names=(args.name,))
    assert isinstance(req, RunRequest) and req.name == "zfnet" and req.trials == 2 and req.space == "lr"
    assert dict(req.sets) == {"momentum": 0.8} and req.dataset == "synthetic" and req.batch_size is None


def test_eval_request_shares_the_data_fields() -> None:
    args = cli.build_parser().parse_args(
        ["eval", "zfnet", "--weights", "w.pt", "--profile", "smoke", "--tta", "ten_crop"]
    )
    req = cli.request(EvalRequest, args)
    assert (req.variant, req.weights, req.tta, req.profile) == ("zfnet", "w.pt", "ten_crop", "smoke")
    run = req.as_run()
    assert run.names == ("zfnet",) and {f.name: getattr(run, f.name) for f in fields(DataRequest)} == req.data_fields()


def test_sweep_help_lists_every_space() -> None:
    for space in spaces.SPACES.values():
        assert f"{space.name}: {space.about}" in spaces.describe()


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (RunRequest(profile="paper"), "the paper profile needs --data"),
        (RunRequest(profile="fast"), "unknown profile 'fast'"),
        (RunRequest(dataset="imagenet21k"), "unknown dataset 'imagenet21k'"),
        (RunRequest(dataset="cifar10"), "dataset cifar10 needs --data DIR"),
    ],
)
def test_bad_profile_or_dataset_is_a_harness_error(req: RunRequest, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        choose_profile(req)


def test_profile_defaults_follow_the_data() -> None:
    assert choose_profile(RunRequest())[0].name == "proxy" and choose_profile(RunRequest())[1] == "mnist-clutter"
    profile, dataset = choose_profile(RunRequest(data="/data/imagenet"))
    assert (profile.name, dataset) == ("paper", "imagefolder")


def test_list_json_gives_each_recipe_under_its_mlflow_param_names() -> None:
    from harness import catalog
    from harness.config import resolve
    from variants import Recipe, get_variant, list_variants

    records = {r["name"]: r for r in json.loads(catalog.list_json(list_variants()))}
    for name, scale in (("alexnet2012", "255.0"), ("torchvision_alexnet", "1.0"), ("zfnet", "255.0")):
        recipe = records[name]["recipe"]
        assert list(recipe) == Recipe.field_names() and recipe["input_scale"] == scale
        # the paper profile changes nothing: a paper run logs exactly these params
        paper = resolve(get_variant(name), RunRequest(data="/data/imagenet")).params()
        assert {k: paper[k] for k in recipe} == recipe
    assert records["alexnet2012_conv6"]["params"] == 61_555_304
