"""The cost of the failure check (harness.distributed.check): one all-reduce of two integers on a gloo group.

torchrun --standalone --nproc-per-node 2 scripts/bench_failure_check.py
"""

import time

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
group = dist.new_group(backend="gloo")
flags = torch.zeros(2, dtype=torch.int64)
for _ in range(50):
    dist.all_reduce(flags, group=group)
n = 2000
t0 = time.perf_counter()
for _ in range(n):
    dist.all_reduce(flags, group=group)
    flags.tolist()
if dist.get_rank() == 0:
    print(f"{(time.perf_counter() - t0) / n * 1e6:.0f} us per check ({dist.get_world_size()} ranks)")
dist.destroy_process_group()
