"""The papers' parallel schemes (harness.parallel) against the one-device network and plain DDP, in real gloo
process groups: forward outputs, parameter gradients, one optimiser step, the gathered checkpoint state."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.parallel import checks
from tests.support import free_port
from variants import get_variant
from variants.types import InitScheme


def _model(name: str, width: float) -> nn.Module:
    from harness.engine import prepare_model

    v = get_variant(name)
    # PyTorch's default init: larger activations than the papers' std 0.01, so that a wrong gradient shows
    recipe = replace(v.recipe, width=width, init=InitScheme("pytorch"))
    return prepare_model(v, 10, recipe, seed=0)


def _close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    err = (got - want).abs().max().item()
    scale = want.abs().max().item()
    assert err <= 1e-4 * scale + 1e-7, f"{what}: max |diff| {err:.3g}, scale {scale:.3g}"


def _worker(rank: int, world: int, port: int, checks: tuple[tuple[str, str], ...], width: float, done: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for kind, name in checks:
            _check(rank, world, kind, name, width)
            with open(done, "a") as f:  # what the test counts: every check passed on every rank
                f.write(f"{rank} {kind} {name}\n")
    finally:
        dist.destroy_process_group()


def _check(rank: int, world: int, kind: str, name: str, width: float) -> None:
    from harness.distributed import Dist
    from harness.engine import build_optimizer
    from harness.parallel.build import build

    d = Dist(rank, world, rank, torch.device("cpu"))
    model = _model(name, width).eval()  # eval: dropout off (the random streams differ by design)
    g = torch.Generator().manual_seed(1)
    batch = 8
    x = torch.randn(batch, 3, 64, 64, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)

    ref = copy.deepcopy(model)  # the one-device network on the whole batch
    out_ref = ref(x)
    F.cross_entropy(out_ref, y).backward()

    scheme = build(kind, model, d, batch).eval()
    data = scheme.data_dist(d)
    xs, ys = x.chunk(data.world_size)[data.rank], y.chunk(data.world_size)[data.rank]
    out = scheme(xs)
    _close(out, out_ref.chunk(data.world_size)[data.rank], "logits")
    F.cross_entropy(out, ys).backward()
    sent = scheme.meter.take()
    assert sent > 0
    full = dict(ref.named_parameters())
    for n, p in scheme.named_parameters():
        _close(p.grad, scheme._slice(n, full[n].grad), f"grad {n}")

    # plain DDP at the same global batch: the same gradients, then one SGD step gives the same parameters
    ddp_model = copy.deepcopy(model)
    ddp = nn.parallel.DistributedDataParallel(ddp_model)
    F.cross_entropy(ddp(xs), ys).backward()
    recipe = get_variant(name).recipe
    opt_s, opt_d = build_optimizer(scheme, recipe, 0.1), build_optimizer(ddp_model, recipe, 0.1)
    opt_s.step(), opt_d.step()
    gathered = copy.deepcopy(model)
    scheme.sync_to(gathered)
    for (n, p), (_, q) in zip(gathered.named_parameters(), ddp_model.named_parameters(), strict=True):
        _close(p, q, f"after one step {n}")
    # the optimiser state gathers to the one-device layout (what a checkpoint holds) and cuts back exactly
    full_state = scheme.full_optimizer_state(opt_s)
    want = opt_d.state_dict()["state"]
    for idx, st in want.items():
        _close(full_state["state"][idx]["momentum_buffer"], st["momentum_buffer"], f"momentum {idx}")
    back = scheme.shard_optimizer_state(full_state, opt_s)
    for idx, st in opt_s.state_dict()["state"].items():
        assert torch.equal(back["state"][idx]["momentum_buffer"], st["momentum_buffer"])


def _spawn(world: int, checks: tuple[tuple[str, str], ...], tmp: Path) -> set[str]:
    """Run `checks` on `world` gloo ranks (a failed check raises here); the (rank, kind, name) lines they passed."""
    # width 1/8 (the same layers, 1/8 of the maps and units): seconds per check; one process group for all checks
    done = tmp / "done.txt"
    mp.spawn(_worker, args=(world, free_port(), checks, 0.125, str(done)), nprocs=world, join=True)
    return set(done.read_text().splitlines())


def _every(world: int, checks: tuple[tuple[str, str], ...]) -> set[str]:
    return {f"{r} {kind} {name}" for r in range(world) for kind, name in checks}


@pytest.mark.slow
def test_two_ranks_towers_equal_the_groups2_net_and_hybrid_equals_ddp(tmp_path: Path):
    towers = ("alexnet2012", "alexnet2012_conv6", "alexnet2012_no_tower_exchange")
    checks = tuple(("towers", n) for n in towers) + (("hybrid", "alexnet2014"),)
    assert _spawn(2, checks, tmp_path) == _every(2, checks)


@pytest.mark.slow
def test_four_ranks_towers_on_a_2x2_mesh_and_hybrid_over_4(tmp_path: Path):
    checks = (("towers", "alexnet2012"), ("hybrid", "alexnet2014"))
    assert _spawn(4, checks, tmp_path) == _every(4, checks)


def _meta(name: str) -> nn.Module:
    with torch.device("meta"):
        return get_variant(name).build(10)


@pytest.mark.parametrize(
    "kind,name,world,batch,message",
    [
        ("towers", "alexnet2014", 2, 16, "needs a two-tower variant"),
        ("towers", "alexnet2012", 1, 16, "needs 2 ranks per replica"),
        ("towers", "alexnet2012", 3, 16, "needs 2 ranks per replica"),
        ("towers", "alexnet2012", 4, 15, "not divisible by the 2 replicas"),
        ("hybrid", "alexnet2014", 1, 16, "needs at least 2 ranks"),
        ("hybrid", "alexnet2014", 3, 18, "do not split over 3 ranks"),
        ("hybrid", "alexnet2012_no_tower_exchange", 2, 16, "two dense hidden fc layers"),
        ("hybrid", "torchvision_alexnet", 2, 16, "ConvNet-built"),
        ("pipeline", "alexnet2014", 2, 16, "unknown parallel scheme"),
    ],
)
def test_a_scheme_refuses_what_it_cannot_run_in_one_line(kind, name, world, batch, message):
    with pytest.raises(HarnessError, match=message) as e:
        checks.check(kind, _meta(name), world, batch)
    assert "\n" not in str(e.value)


def test_schemes_apply_to_the_variants_they_were_made_for():
    checks.check("towers", _meta("alexnet2012"), 2, 128)
    checks.check("towers", _meta("alexnet2012"), 8, 128)  # 4 replicas x 2 towers
    checks.check("hybrid", _meta("alexnet2014"), 4, 128)
    checks.check("hybrid", _meta("alexnet2012"), 2, 128)  # its convolutions replicate as well
    assert checks.deviations("none") == ()


def test_parallel_is_a_param_a_deviation_and_in_the_config_hash_only_when_not_none():
    from harness import config
    from harness.request import RunRequest

    v = get_variant("alexnet2012")
    plain = config.resolve(v, RunRequest(profile="smoke"))
    towers = config.resolve(v, RunRequest(profile="smoke", parallel="towers"), world_size=2)
    assert plain.params()["parallel"] == "none" and towers.params()["parallel"] == "towers"
    assert towers.config_hash() != plain.config_hash()
    # DDP at any world size keeps the identity runs had before schemes existed (the world size is not in it)
    assert config.resolve(v, RunRequest(profile="smoke"), world_size=2).config_hash() == plain.config_hash()
    assert any(d.startswith("Parallel towers") for d in towers.profile_deviations)
    assert not any(d.startswith("Parallel") for d in plain.profile_deviations)
    with pytest.raises(HarnessError, match="not supported"):
        config.resolve(v, RunRequest(profile="smoke", parallel="towers", compile=True), world_size=2)


def test_towers_refuse_a_net_whose_lrn_crosses_the_towers():
    """The towers scheme computes each tower's LRN on its own rank: it needs the per-tower LRN of the 2012 code
    (variants.convnet.TowerLRN), not one LRN over both towers' maps."""
    from variants.convnet import ConvNet
    from variants.krizhevsky2012 import SPEC

    with torch.device("meta"):
        across = ConvNet(replace(SPEC, lrn_towers=1), 10)
    with pytest.raises(HarnessError, match="normalises across the towers"):
        checks.check("towers", across, 2, 16)
