"""Recipe.dropout_scaling: the paper profile trains with the network's own dropout (the 2012/2014 code's for KSH12,
OWT14 and ZF13: kept units unscaled in training, x 0.5 at test), the proxy with nn.Dropout (a recorded override);
the built net, the logged param, `eval` and `analyze` follow it, and the proxy's config hashes stay what they were
before the code's dropout existed (commit 1cb0e80)."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

import variants
from harness import config, engine, schema, tracking
from harness.analysis.record import run_network
from harness.errors import HarnessError
from harness.request import RunRequest
from variants.convnet import ScaleAtTestDropout, set_dropout_scaling

CODE_NETS = ("alexnet2012", "alexnet2014", "zfnet")
PAPER = RunRequest(data="/data/imagenet")
PROXY = RunRequest()


def _dropouts(model: nn.Module) -> list[type]:
    return [type(m) for m in model.modules() if isinstance(m, nn.Dropout)]


@pytest.mark.parametrize("name", CODE_NETS)
def test_the_proxy_trains_with_nn_dropout_and_the_paper_profile_with_the_codes(name: str) -> None:
    v = variants.get_variant(name)
    assert v.recipe.dropout_scaling is None  # the network's own
    paper, proxy = config.resolve(v, PAPER), config.resolve(v, PROXY)
    assert paper.recipe.dropout_scaling == "test" and proxy.recipe.dropout_scaling == "train"
    assert not paper.recipe_modified and not proxy.recipe_modified  # a profile override, not the user's change
    (why,) = [d for d in proxy.profile_deviations if d.startswith("dropout_scaling = train: ")]
    assert "26.25 %" in why and "28.80 %" in why  # the measured reason
    assert not any(d.startswith("dropout_scaling") for d in paper.profile_deviations)
    assert any(n.startswith("dropout:") for n in paper.network)
    assert not any(n.startswith("dropout:") for n in proxy.network)


@pytest.mark.parametrize("name", CODE_NETS)
def test_the_built_network_has_the_resolved_dropout(name: str) -> None:
    v = variants.get_variant(name)
    for req, kind in ((PAPER, ScaleAtTestDropout), (PROXY, nn.Dropout)):
        recipe = config.resolve(v, req).recipe
        model = engine.prepare_model(v, 10, replace(recipe, width=0.25), seed=0)
        assert _dropouts(model) == [kind, kind], req


def test_the_two_kinds_compute_as_their_code() -> None:
    x = torch.ones(4, 1000)
    code, inverted = ScaleAtTestDropout(0.5), nn.Dropout(0.5)
    code.eval(), inverted.eval()
    assert torch.equal(code(x), x * 0.5) and torch.equal(inverted(x), x)  # KSH12 s4.2: x 0.5 at test
    code.train(), inverted.train()
    assert set(code(x).unique().tolist()) == {0.0, 1.0} and set(inverted(x).unique().tolist()) == {0.0, 2.0}


def test_swapping_the_dropout_keeps_the_state_dict_and_reaches_torchvisions_net() -> None:
    tv = variants.get_variant("torchvision_alexnet")
    assert _dropouts(tv.build(10)) == [nn.Dropout, nn.Dropout]
    assert config.resolve(tv, PAPER).recipe.dropout_scaling == "train"  # torchvision's own
    code = tv.build(10, dropout_scaling="test")
    assert _dropouts(code) == [ScaleAtTestDropout, ScaleAtTestDropout]
    assert code.state_dict().keys() == tv.build(10).state_dict().keys()
    net = variants.get_variant("alexnet2012").build(10, 0.25)
    back = set_dropout_scaling(set_dropout_scaling(net, "train"), "test")
    assert _dropouts(back) == [ScaleAtTestDropout, ScaleAtTestDropout]
    assert [m.p for m in back.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]


def test_set_dropout_scaling_is_a_recipe_change_with_its_own_identity() -> None:
    v = variants.get_variant("alexnet2014")
    code_on_proxy = config.resolve(v, RunRequest(sets=config.parse_set(["dropout_scaling=test"])))
    assert code_on_proxy.recipe.dropout_scaling == "test" and code_on_proxy.modified_keys == ("dropout_scaling",)
    assert code_on_proxy.config_hash() != config.resolve(v, PROXY).config_hash()
    same = config.resolve(v, replace(PAPER, sets=config.parse_set(["dropout_scaling=test"])))
    assert not same.recipe_modified and same.config_hash() == config.resolve(v, PAPER).config_hash()
    with pytest.raises(HarnessError, match="not one of test, train"):
        config.parse_set(["dropout_scaling=half"])
    assert config.resolve(v, PROXY).params()["dropout_scaling"] == "train"


# Computed with harness.config.resolve(variant, RunRequest()).config_hash() on commit 1cb0e80's code (the proxy
# profile before the code's dropout), so that stores recorded then still skip or resume their runs.
HASHES_1CB0E80 = {
    "alexnet2012": "e81d17358e184219",
    "alexnet2012_no_lrn": "95a4508b4bac0635",
    "alexnet2014": "2ee46a6d2d4d3fcc",
    "zfnet": "2abf5c9a29168444",
}


@pytest.mark.parametrize("name", sorted(HASHES_1CB0E80))
def test_the_proxys_config_hash_is_the_one_before_the_codes_dropout(name: str) -> None:
    cfg = config.resolve(variants.get_variant(name), PROXY)
    # the proxy of 1cb0e80 trained 2 epochs on every canvas with the native 6 x 6 pool before fc6 (docs/proxy.md has
    # what changed since): with those settings back, the fields added since (pool_to at None, eval_epochs,
    # dropout_scaling) leave the identity as it was
    cfg = replace(cfg, recipe=replace(cfg.recipe, epochs=2, pool_to=None), limit_train=None, limit_val=None)
    if name == "alexnet2012":
        # the one thing that changed on the proxy: the two-tower net's LRN per tower (docs/paper-recipe.md)
        assert cfg.network == ("lrn: per tower",) and cfg.config_hash() != HASHES_1CB0E80[name]
        cfg = replace(cfg, network=())
    assert cfg.config_hash() == HASHES_1CB0E80[name]


def test_runs_logged_before_the_field_evaluate_with_nn_dropout() -> None:
    assert config.run_dropout_scaling({}) == "train"
    assert config.run_dropout_scaling({"dropout_scaling": "test"}) == "test"
    with pytest.raises(HarnessError, match="dropout_scaling 'None'"):
        config.run_dropout_scaling({"dropout_scaling": "None"})
    v = variants.get_variant("alexnet2012")
    assert _dropouts(run_network(v, {"width": "0.25"}, 10)) == [nn.Dropout, nn.Dropout]  # `harness analyze`
    assert _dropouts(run_network(v, {"dropout_scaling": "test"}, 10)) == [ScaleAtTestDropout, ScaleAtTestDropout]


def _loss(line: str) -> float:
    m = re.search(r"loss (\d+\.\d+)$", line.strip())
    assert m, line
    return float(m.group(1))


@pytest.mark.slow
def test_eval_of_a_run_uses_the_dropout_it_trained_with(harness_main, uri: str, runs, tmp_path: Path) -> None:
    """A smoke run with nn.Dropout (the proxy's kind) on alexnet2014, whose own is the code's: `eval --run-id`
    reproduces the run's own final loss; the code's x 0.5 at test (`--set`, or a bare weights file, which gets the
    variant's own) gives another."""
    code, _, err = harness_main(["run", "alexnet2014", "--profile", "smoke", "--epochs", "1", "--set", "width=0.25",
                                 "--set", "dropout_scaling=train", "--keep-weights", "--tracking-uri", uri,
                                 "--no-report"])  # fmt: skip
    assert code == 0, err[-2000:]
    (run,) = runs(uri)
    assert run.data.params["dropout_scaling"] == "train"
    rid = run.info.run_id
    common = ["--profile", "smoke", "--tracking-uri", uri]
    code, out, err = harness_main(["eval", "alexnet2014", "--run-id", rid, *common])
    assert code == 0, err
    assert _loss(out) == pytest.approx(run.data.metrics["final_val_loss"], abs=1e-4)
    code, out, err = harness_main(["eval", "alexnet2014", "--run-id", rid, "--set", "dropout_scaling=test", *common])
    assert code == 0, err
    as_code = _loss(out)
    assert abs(as_code - run.data.metrics["final_val_loss"]) > 0.01
    weights = tmp_path / "final.pt"  # the run's checkpoint as a file of the user's
    tracking.load_artifact(uri, rid, schema.ART_CHECKPOINT, lambda p: shutil.copy(p, weights))
    code, out, err = harness_main(["eval", "alexnet2014", "--weights", str(weights), *common])
    assert code == 0, err
    assert _loss(out) == pytest.approx(as_code, abs=1e-4)  # a file: the variant's own dropout
    code, out, err = harness_main(["eval", "alexnet2014", "--weights", str(weights), "--set", "dropout_scaling=train",
                                   *common])  # fmt: skip
    assert code == 0, err
    assert _loss(out) == pytest.approx(run.data.metrics["final_val_loss"], abs=1e-4)
