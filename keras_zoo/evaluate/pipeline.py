"""Feeding the model: work computed ahead by a thread pool, batches, a progress bar."""

import collections
import concurrent.futures
import itertools

import keras


def prefetch(function, items, workers=4, depth=16):
    """``function(item)`` for every item, in order, computed ahead by a thread pool (``depth`` in flight)."""
    items = iter(items)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = collections.deque(pool.submit(function, item) for item in itertools.islice(items, depth))
        while pending:
            result = pending.popleft().result()
            for item in itertools.islice(items, 1):
                pending.append(pool.submit(function, item))
            yield result


def batched(iterable, size):
    """Lists of up to ``size`` consecutive items."""
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def progress_bar(total, enabled, unit="image"):
    """A Keras progress bar over ``total`` units (silent unless ``enabled``)."""
    return keras.utils.Progbar(total, unit_name=unit, verbose=1 if enabled else 0)
