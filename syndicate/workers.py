"""Run a function over batches of work on every core, or in this process when the batch
is too small for worker processes to pay off."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")

# Below this many items, starting worker processes costs more than it saves.
PARALLEL_MIN = 200


def run_batches(work: Callable[[Job], list[Result]], jobs: Sequence[Job],
                items: int) -> Iterator[list[Result]]:
    """Yield `work(job)` for each job, in order. `work` must be a module-level function
    (it is sent to worker processes); `items` is how many items the jobs hold in all."""
    workers = min(os.cpu_count() or 1, 8)
    # fork is only safe from a single-threaded process: `serve --build` builds from a
    # background thread while the server's threads run, so there it works in-process.
    threaded = threading.active_count() > 1
    if items < PARALLEL_MIN or workers == 1 or len(jobs) == 1 or threaded:
        yield from map(work, jobs)
        return
    # Imported here: a warm run reads no file and needs no worker processes.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # fork: workers inherit the loaded modules, so they start in milliseconds.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
        yield from pool.map(work, jobs)
