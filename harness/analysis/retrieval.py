"""Nearest-neighbour retrieval (KSH12 s6.1, Fig. 4 right): training images whose last-hidden-layer activations are
closest in Euclidean distance to a query's, against the same retrieval on raw pixels. Distances in query batches."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

KS = (1, 5, 10)  # precision@k reported for these k


def nearest_euclidean(queries: np.ndarray, database: np.ndarray, k: int, batch: int = 256) -> np.ndarray:
    """Indices (n_queries, k) of the k nearest database rows by Euclidean distance, nearest first (ties: lower
    index first, as a stable sort gives)."""
    db = torch.from_numpy(np.ascontiguousarray(database, dtype=np.float32))
    out = []
    for s in range(0, len(queries), batch):
        q = torch.from_numpy(np.ascontiguousarray(queries[s : s + batch], dtype=np.float32))
        d = torch.cdist(q, db)
        out.append(torch.sort(d, dim=1, stable=True).indices[:, :k].numpy())
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def nearest_hamming(queries: np.ndarray, database: np.ndarray, k: int, batch: int = 256) -> np.ndarray:
    """As `nearest_euclidean` for packed binary codes (uint8 rows from np.packbits): Hamming distance, XOR and a
    byte popcount table."""
    out = []
    for s in range(0, len(queries), batch):
        x = np.bitwise_xor(queries[s : s + batch, None, :], database[None, :, :])
        d = _POPCOUNT[x].sum(axis=2, dtype=np.int32)
        out.append(np.argsort(d, axis=1, kind="stable")[:, :k])
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def precision_at(neighbours: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray, ks=KS) -> dict[int, float]:
    """Mean over queries of the share of the k nearest that have the query's label, for each k."""
    same = np.asarray(db_labels)[neighbours] == np.asarray(query_labels)[:, None]
    return {k: float(same[:, :k].mean()) for k in ks}


@dataclass(frozen=True)
class Retrieval:
    """One representation's retrieval: precision@k and the time per query (search only, the codes given)."""

    name: str  # fc7, fc7_code, pixel_code, pixels
    precision: dict[int, float]
    query_ms: float
    neighbours: np.ndarray  # (n_queries, max k)


def retrieve(name: str, queries, database, q_labels, db_labels, hamming: bool = False, ks=KS) -> Retrieval:
    t0 = time.perf_counter()
    nn_ = (nearest_hamming if hamming else nearest_euclidean)(queries, database, max(ks))
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(queries))
    return Retrieval(name, precision_at(nn_, q_labels, db_labels, ks), ms, nn_)


def pixel_vectors(x: torch.Tensor, max_side: int = 32) -> np.ndarray:
    """Raw pixels of network inputs [n,3,s,s] as vectors, area-averaged down to at most `max_side` px a side so that
    a database of ImageNet-sized images stays in memory and the pixel auto-encoder small (the proxy: 64 -> 32 px)."""
    if x.shape[-1] > max_side:
        x = torch.nn.functional.adaptive_avg_pool2d(x, max_side)
    return x.flatten(1).numpy().astype(np.float32)
