"""A known slowdown that stands for slower code: extra CPU work at the end of every step.

The extra work is a share of the CPU time the rank's own step used (all its threads), done with torch
matrix products so that it spreads over the same intra-op threads the model uses. CPU time, unlike wall
time, leaves out the rank's waits for the other ranks (the all-reduce, DDP's buffer broadcast), so one
rank's extra work is not fed into the next step's; and unlike a sleep it holds the cores, so ranks that
share cores slow each other down as slower code would.
"""
from __future__ import annotations

import time

import torch

BLOCK = 192     # one product is ~14 MFLOP: a fraction of a millisecond, fine-grained enough to stop on time


def burn_cpu(seconds: float) -> float:
    """Do torch work until this process has used ``seconds`` more CPU time; returns the CPU time used."""
    start = time.process_time()
    if seconds <= 0:
        return 0.0
    a = torch.full((BLOCK, BLOCK), 1.0 / BLOCK)
    b = torch.empty_like(a)
    while time.process_time() - start < seconds:
        torch.mm(a, a, out=b)
    return time.process_time() - start
