"""Image batches decoded by torch.utils.data workers, ahead of the training step (issue 22; the official loop's data pipeline).

The data RNG contract is kept: every random choice of a batch (which images, which x-flips) is
drawn in the training process from a copy of the run's data generator, in the order `sample`
draws them, and the workers only decode. For a seed the batches are then the same images in the
same order whether decoded by workers or in-process (tests/roadmap/test_loader.py checks it
bitwise against `sample`). Each rank decodes only its own slice of the global batch. Batches
travel as uint8 (4x less than float) in pinned memory and become [-1, 1] floats on the device.

The copy of the generator runs ahead of the training step by the prefetch depth; the run's own
data generator is advanced by the same draws when a batch is taken (`next`), so checkpoints
hold the state of the batches consumed and a resumed run continues the same sequence.
"""
import itertools

import torch
import torch.utils.data


class _Requests(torch.utils.data.Sampler):
    """An endless sequence of (indices, flips) of this rank's slice, drawn as the trainer would draw them."""

    def __init__(self, data, batch: int, part: slice, generator: torch.Generator):
        self.data, self.batch, self.part, self.generator = data, batch, part, generator

    def __iter__(self):
        while True:
            index, flip = self.data.draw(self.batch, self.generator)
            yield index[self.part], None if flip is None else flip[self.part]


class _Decoder(torch.utils.data.Dataset):
    """Decodes one request (indices, flips) into (uint8 images, labels) in a worker."""

    def __init__(self, data):
        self.data = data

    def __getitem__(self, request):
        return self.data.decode(*request)


class ImageLoader:
    """Batches of an image data set (ImageDataSet.draw / decode) for one rank, decoded by `workers` processes
    (0: in-process) with `prefetch` batches in flight per worker; `next(generator)` returns (real, labels) on
    `device` and advances the run's data `generator` by the same draws."""

    def __init__(self, data, batch: int, part: slice, generator: torch.Generator, device: torch.device,
                 workers: int = 0, prefetch: int = 2):
        self.data, self.batch, self.part, self.device = data, batch, part, torch.device(device)
        ahead = torch.Generator().manual_seed(0)
        ahead.set_state(generator.get_state())  # a copy: the run's generator moves only with consumed batches
        options = dict(num_workers=workers, pin_memory=self.device.type == "cuda", batch_size=None,
                       sampler=_Requests(data, batch, part, ahead))
        if workers:
            options.update(prefetch_factor=prefetch, persistent_workers=True)
        self._batches = iter(torch.utils.data.DataLoader(_Decoder(data), **options))

    def next(self, generator: torch.Generator) -> tuple:
        self.data.draw(self.batch, generator)  # keep the run's data generator in step with what is consumed
        images, labels = next(self._batches)
        images = images.to(self.device, non_blocking=True).float() / 127.5 - 1.0
        return images, None if labels is None else labels.to(self.device, non_blocking=True)


def take(loader: ImageLoader, generator: torch.Generator, count: int) -> list:
    """`count` batches (for tests and the benchmark)."""
    return [loader.next(generator) for _ in itertools.repeat(None, count)]
