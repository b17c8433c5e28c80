# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Resident tensors: splits in memory, their batches, their augmentation
#
# > A split of examples held on one device, batched by indexing, augmented for a whole batch at once; the protocol every split speaks.

# %%
#| default_exp tensors

# %% [markdown]
# The embedded benches and CIFAR fit in memory: `01_data` loads a run's examples once, normalised, onto its device,
# and every batch after that is an index into a resident tensor — no per-example Python, no loader processes. This
# chapter holds that split and its augmentation; ImageNet's splits, which stream JPEGs, speak the same protocol
# (`25_imagenet`).

# %%
#| export
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

# %%
#| hide
from fastcore.test import test_close, test_eq


# %% [markdown]
# ## Batched on-tensor augmentation
#
# Random crop with 4-pixel padding and a horizontal flip with probability ½, for a whole batch in three tensor
# operations: pad once, gather each example's 32×32 window through broadcast index tensors, flip by `torch.where`.
# The padding is **black**, as in OpenLTH (torchvision's `RandomCrop(32, padding=4)` pads the raw image with zeros
# before `Normalize`): our images are normalised once, in memory, so the pad value is black after normalisation,
# −mean/std per channel (`fill`; `black_fill(info)`), not 0 — 0 would be the mean colour.
#
# The draws (row shift, column shift, flip) come from the run's CPU generator, so the stream is the same on every
# device. They are split from their application for two reasons:
#
# - **one pinned, non-blocking copy per step.** The three draws are stacked into one (3, N) tensor and, on a GPU,
#   sent in one copy from pinned memory that does not wait for the device (three blocking copies per step before:
#   each stalled the host until the GPU had drained its queue);
# - **data-parallel ranks.** A rank draws the parameters of the *whole* global batch (the same draws, in the same
#   order, as one process) and applies its slice to its own examples, so an example is augmented identically
#   whatever the number of ranks.

# %%
#| export
def crop_flip_params(n: int, generator: torch.Generator | None = None, device="cpu", pad: int = 4) -> torch.Tensor:
    """The draws of `crop_flip` for a batch of `n` examples: rows (row shift, column shift, flip) of a (3, n) int64
    tensor on `device`, drawn in the order the first version drew them and sent to a GPU in one pinned,
    non-blocking copy."""
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    params = torch.stack([dy, dx, flip.long()])
    if torch.device(device).type == "cuda": return params.pin_memory().to(device, non_blocking=True)
    return params.to(device)

def black_fill(info) -> torch.Tensor:
    "The value of a black pixel after normalisation, per channel: −mean / std (the padding of a random crop)."
    return -torch.tensor(info.mean, dtype=torch.float32) / torch.tensor(info.std, dtype=torch.float32)

def apply_crop_flip(x: torch.Tensor, params: torch.Tensor, pad: int = 4, fill: torch.Tensor | None = None) -> torch.Tensor:
    "Crop and flip a batch `x` (N, C, H, W) as `params` (3, N) say, on `x`'s device; padding `fill` per channel (or 0)."
    n, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    if fill is not None:   # the border takes the fill value of its channel; the image is unchanged
        border = torch.ones(1, 1, h + 2 * pad, w + 2 * pad, dtype=torch.bool, device=x.device)
        border[..., pad:pad + h, pad:pad + w] = False
        xp = torch.where(border, fill.to(x.device, x.dtype).view(1, c, 1, 1), xp)
    dev = x.device
    dy, dx, flip = params[0], params[1], params[2].bool()
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    cols = dx[:, None] + ar_w[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows = dy[:, None] + ar_h[None, :]
    return xp[torch.arange(n, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
              rows[:, None, :, None], cols[:, None, None, :]]

def crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4,
              fill: torch.Tensor | None = None) -> torch.Tensor:
    "Random `pad`-pixel crop and horizontal flip of a batch `x` (N, C, H, W), on its device, padded with `fill`."
    return apply_crop_flip(x, crop_flip_params(len(x), generator, x.device, pad), pad, fill)


# %%
x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float).view(2, 1, 4, 4) + 1
out = crop_flip(x, torch.Generator().manual_seed(0), pad=1)
test_eq(out.shape, x.shape)
# every output row is a (possibly flipped) window of the zero-padded input
xp = torch.nn.functional.pad(x, (1, 1, 1, 1))
for i in range(2):
    wins = [xp[i, 0, a:a + 4, b:b + 4] for a in range(3) for b in range(3)]
    assert any(torch.equal(out[i, 0], w) or torch.equal(out[i, 0], w.flip(-1)) for w in wins)
# the stream of the first version (three draws, in this order), and one rank's slice of a batch's draws
g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
p = crop_flip_params(5, g1, pad=1)
test_eq(p[0], torch.randint(0, 3, (5,), generator=g2)); test_eq(p[1], torch.randint(0, 3, (5,), generator=g2))
test_eq(p[2].bool(), torch.rand(5, generator=g2) < 0.5)
xs = torch.cat([x, x, x[:1]])
test_eq(apply_crop_flip(xs, p, pad=1)[3:5], apply_crop_flip(xs[3:5], p[:, 3:5], pad=1))
# black padding: a shift by the whole pad shows `fill` in the border, per channel, and the image elsewhere
x3 = torch.randn(1, 3, 4, 4); fill = torch.tensor([-1.0, -2.0, -3.0])
shifted = apply_crop_flip(x3, torch.tensor([[0], [0], [0]]), pad=2, fill=fill)   # window at the top-left corner
test_eq(shifted[0, :, :2, :].amax(dim=(1, 2)), fill); test_eq(shifted[0, :, 2:, 2:], x3[0, :, :2, :2])
test_eq(apply_crop_flip(x3, torch.tensor([[2], [2], [0]]), pad=2, fill=fill), x3)   # the centred window: no border
from types import SimpleNamespace
test_close(black_fill(SimpleNamespace(mean=(0.5, 0.25), std=(0.25, 0.5))), torch.tensor([-2.0, -0.5]))


# %% [markdown]
# ## Splits
#
# A `TensorSplit` is a set of examples resident on one device: inputs, the labels *used* (noisy for training),
# and stable ids. `batches` yields `(x, y, index)` where `index` addresses the split's own rows.
#
# Every split (`imagenet.ImageFolderSplit` too) speaks one protocol, which the training loop relies on:
#
# - `plan(shuffle, generator)`: what a pass draws before its first batch (here the order), as CPU tensors;
# - `iterate(plan, batch_size, generator, augment, start, shard)`: the batches of that pass from batch `start` on.
#   A pass is resumable mid-way: a checkpoint taken after `k` batches stores the plan, `k` and the generator's
#   state, and `iterate(plan, start=k)` with that state continues the very same stream;
# - `shard=(rank, world)`: this rank's contiguous part of each global batch (`shard_bounds`), augmented as one
#   process would augment it;
# - `batches(...)`: `iterate(plan(...))`, one whole pass.

# %%
#| export
def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    "The slice [lo, hi) of `n` items that rank `rank` of `world` takes: contiguous, sizes differing by at most one."
    q, r = divmod(n, world)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)

@dataclass
class TensorSplit:
    x: torch.Tensor
    y: torch.Tensor
    ids: torch.Tensor
    augment: bool = False
    fill: torch.Tensor | None = None    # the padding of an augmented crop, per channel (black: `black_fill`)

    def __len__(self): return self.y.numel()

    def plan(self, shuffle: bool = False, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        "What a pass draws before its first batch: the order of the examples (a permutation when shuffled)."
        n = len(self)
        return {"order": torch.randperm(n, generator=generator) if shuffle else torch.arange(n)}

    def iterate(self, plan: dict, batch_size: int, generator: torch.Generator | None = None,
                augment: bool | None = None, start: int = 0,
                shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield `(x, y, index)` for batches `start, start + 1, ...` of the pass `plan`; augmented when asked (the
        draws of a batch are taken from `generator` when the batch is yielded). Indexing a resident tensor per batch."""
        order = plan["order"].to(self.x.device)
        aug = self.augment if augment is None else augment
        for s in range(start * batch_size, len(order), batch_size):
            idx = order[s:s + batch_size]
            # the draws are the whole batch's, as one process draws them; a rank keeps its part of the batch
            params = crop_flip_params(len(idx), generator, self.x.device) if aug else None
            lo, hi = shard_bounds(len(idx), *shard) if shard is not None else (0, len(idx))
            idx = idx[lo:hi]
            xb = self.x[idx]
            if aug: xb = apply_crop_flip(xb, params[:, lo:hi], fill=self.fill)
            yield xb, self.y[idx], idx

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                augment: bool | None = None,
                shard: tuple[int, int] | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        "One pass: `iterate(plan(shuffle, generator), ...)`."
        return self.iterate(self.plan(shuffle, generator), batch_size, generator, augment, shard=shard)

    def images(self, positions) -> torch.Tensor:
        "The (normalised, unaugmented) inputs of the examples at `positions` of the split, on the CPU."
        return self.x[torch.as_tensor(positions, device=self.x.device)].cpu()

    def to(self, device) -> "TensorSplit":
        return TensorSplit(self.x.to(device), self.y.to(device), self.ids, self.augment,
                           None if self.fill is None else self.fill.to(device))


# %%
x = torch.arange(10.).view(10, 1, 1, 1).expand(10, 1, 8, 8).contiguous()
s = TensorSplit(x, torch.arange(10), torch.arange(10), augment=True)
test_eq([shard_bounds(7, r, 3) for r in range(3)], [(0, 3), (3, 5), (5, 7)])
whole = list(s.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0)))
# resumed after one batch, with the plan and the generator state of that moment: the same stream
g = torch.Generator().manual_seed(0); plan = s.plan(True, g); it = s.iterate(plan, 4, g); next(it); state = g.get_state()
g2 = torch.Generator(); g2.set_state(state)
for a, b in zip(whole[1:], s.iterate(plan, 4, g2, start=1)): test_eq(a[0], b[0])
# two ranks' parts of every batch, put together, are the single process's batch
parts = [list(s.batches(4, shuffle=True, generator=torch.Generator().manual_seed(0), shard=(r, 2))) for r in (0, 1)]
for b, (p0, p1) in zip(whole, zip(*parts)): test_eq(torch.cat([p0[0], p1[0]]), b[0]); test_eq(torch.cat([p0[2], p1[2]]), b[2])

# %% [markdown]
# Both split kinds answer `images(positions)` (App. K shows examples of either): an in-memory split gives its rows,
# on the CPU.

# %%
_s = TensorSplit(torch.arange(12.).view(6, 2), torch.zeros(6, dtype=torch.long), torch.arange(6))
test_eq(_s.images([4, 1]), torch.tensor([[8., 9.], [2., 3.]]))
