"""Counting a model's instances as they are built, and how many are alive at once.

What a test of memory bounds can check on SQLite and PostgreSQL alike: a
queryset read with .iterator() builds its rows one at a time as they are
consumed, while a queryset iterated as it is builds them all first and keeps
them in its result cache.
"""

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from django.db.models.signals import post_init


class Instances:
    def __init__(self) -> None:
        # Instances built so far while watched.
        self.built = 0
        # The most that were alive at once, counted each time one is built.
        self.most_alive = 0
        self._alive: weakref.WeakSet = weakref.WeakSet()

    def _built(self, sender, instance, **kwargs) -> None:
        self.built += 1
        self._alive.add(instance)
        if len(self._alive) > self.most_alive:
            # A job and its select_related result point at each other: instances
            # the code has dropped are freed only by the cycle collector.
            gc.collect()
            self.most_alive = max(self.most_alive, len(self._alive))


@contextmanager
def watching(model) -> Iterator[Instances]:
    """Count the instances of `model` built inside the block."""
    instances = Instances()
    # What exists already is set aside, so that each collection looks only at
    # what the block makes (a full collection of a test process takes ~100 ms).
    gc.freeze()
    post_init.connect(instances._built, sender=model, weak=False)
    try:
        yield instances
    finally:
        post_init.disconnect(instances._built, sender=model)
        gc.unfreeze()
