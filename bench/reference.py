"""The reference pipeline the package is measured against: the usual research-code pattern.

A `Dataset` holding uint8 images that builds one PIL image per example and applies torchvision transforms
(`RandomCrop(32, 4)` + `RandomHorizontalFlip` for CIFAR, `ToTensor` + `Normalize` for all), batched by a
`DataLoader`, with the batch moved to the device and the masks multiplied in after every optimizer step.
Same model, optimizer and batch size as the package's loop, so the ratio of the two is the cost of the pipeline.
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T


class PILDataset(torch.utils.data.Dataset):
    "uint8 images (N, H, W) or (N, H, W, C) turned into a PIL image and transformed one example at a time."

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std, augment: bool):
        self.images, self.labels = images, labels
        size = images.shape[1]
        aug = [T.RandomCrop(size, padding=4), T.RandomHorizontalFlip()] if augment else []
        self.transform = T.Compose(aug + [T.ToTensor(), T.Normalize(mean, std)])

    def __len__(self): return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_loader(images, labels, mean, std, augment: bool, batch_size: int, workers: int = 0, seed: int = 0):
    ds = PILDataset(images, labels, mean, std, augment)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       generator=torch.Generator().manual_seed(seed), drop_last=False)


def reference_steps(model, loader, opt, masks: dict, device, max_steps: int | None = None) -> dict:
    """Train over `loader` (at most `max_steps` batches) the plain way. Returns seconds, steps, examples and the
    seconds spent waiting for the loader (data handling)."""
    params = dict(model.named_parameters())
    model.train()
    steps = n = 0
    data_s = 0.0
    t0 = time.perf_counter()
    it = iter(loader)
    while max_steps is None or steps < max_steps:
        td = time.perf_counter()
        try: xb, yb = next(it)
        except StopIteration: break
        xb, yb = xb.to(device), yb.to(device)
        data_s += time.perf_counter() - td
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for k, m in masks.items(): params[k].mul_(m)
        steps += 1; n += len(yb)
    if device.type == "cuda": torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - t0, "steps": steps, "examples": n, "data_seconds": data_s}
