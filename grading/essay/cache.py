"""A small thread-safe, bounded cache that computes each missing value once.

Providers are shared by a worker's threads: when several threads ask for the same missing value
(a model for one exemplar set), one computes it and the others wait for it rather than fitting
the same model again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class OnceCache(Generic[Value]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[Hashable, Value] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    return self._values[key]
                waiting = self._pending.get(key)
                if waiting is None:
                    done = self._pending[key] = threading.Event()
                    break
            # Another thread is computing it; if that fails, the loop computes it here.
            waiting.wait()
        try:
            value = compute()
        except BaseException:
            with self._lock:
                del self._pending[key]
            done.set()
            raise
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.size:
                self._values.popitem(last=False)
            del self._pending[key]
        done.set()
        return value

    def __len__(self) -> int:
        return len(self._values)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
