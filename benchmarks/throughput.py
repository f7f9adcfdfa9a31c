"""Training throughput per variant (images/s, fwd + bwd + fused SGD step) and its ratio to torchvision_alexnet.

    python benchmarks/throughput.py --size 64 --batch-size 32 [NAME ...]
    python benchmarks/throughput.py --default-malloc ...   # without harness.memory's malloc tuning, to compare

A benchmark, not a test: it prints numbers for choosing profile budgets (the proxy profile was sized from it).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import variants
from harness import memory


def images_per_second(name: str, size: int, batch: int, steps: int) -> float:
    model = variants.get_variant(name).build(10)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4, fused=True)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--default-malloc", action="store_true", help="skip harness.memory.keep_freed_memory()")
    a = p.parse_args()
    tuned = not a.default_malloc and memory.keep_freed_memory()
    names = a.names or [v.name for v in variants.list_variants()]
    base = images_per_second("torchvision_alexnet", a.size, a.batch_size, a.steps)
    print(
        f"{'variant':36} {'img/s':>8} {'ratio':>6}   ({a.size} px, batch {a.batch_size}, "
        f"{torch.get_num_threads()} threads, "
        f"malloc {'tuned' if tuned else 'default'})"
    )
    for name in names:
        ips = images_per_second(name, a.size, a.batch_size, a.steps)
        print(f"{name:36} {ips:>8.1f} {ips / base:>6.2f}")


if __name__ == "__main__":
    main()
