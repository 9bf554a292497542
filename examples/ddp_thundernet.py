"""Data-parallel training of ThunderNet-SNet49 on CPU processes with PyTorch's own engine
(DistributedDataParallel over gloo). Launch with torchrun:

    torchrun --nproc_per_node 2 examples/ddp_thundernet.py --steps 20

Each process trains on its own half of every global batch of synthetic shapes (see
thundernet_shapes.py) with one thread; DDP averages the gradients, so every process holds the same
parameters after each step.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

import nimbleops
from nimbleops.models import ThunderNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thundernet_shapes import batch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--global-batch", type=int, default=8)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.global_batch % world:
        raise SystemExit(f"--global-batch: expected a multiple of the {world} processes, got {args.global_batch}")
    torch.set_num_threads(1)
    nimbleops.set_num_threads(1)
    torch.manual_seed(0)  # the same initial parameters everywhere (DDP also broadcasts rank 0's)
    model = torch.nn.parallel.DistributedDataParallel(ThunderNet("snet49", num_classes=3).train())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    per_rank = args.global_batch // world
    t0 = time.perf_counter()
    for step in range(args.steps):
        x, targets, _ = batch(np.random.default_rng(step), args.global_batch)  # the same global batch everywhere
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        loss = sum(model(x[mine], targets[mine]).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if rank == 0 and (step % 5 == 0 or step == args.steps - 1):
            print(f"step {step:3d}  loss {float(loss):.3f}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    # every process holds the same parameters
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        print("parameters equal on every process:", all(torch.equal(gathered[0], g) for g in gathered))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
