"""Run a function over batches of work on every core, or in this process when the batch
is too small for worker processes to pay off."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")
Item = TypeVar("Item")

# Below this many items, starting worker processes costs more than it saves.
PARALLEL_MIN = 200


def run_batches(work: Callable[[Job], list[Result]], jobs: Sequence[Job],
                items: int, minimum: int = PARALLEL_MIN,
                meanwhile: Callable[[], None] | None = None) -> Iterator[list[Result]]:
    """Yield `work(job)` for each job, in order. `work` must be a module-level function
    (it is sent to worker processes); `items` is how many items the jobs hold in all,
    and below `minimum` they are done in this process. `meanwhile`, when given, is
    called once in this process while worker processes do the jobs (and not at all when
    there are none): work of the caller's own that would otherwise wait its turn."""
    parallel = worker_count(jobs, items, minimum) > 1  # (before started() adds threads)
    with started(work, jobs, items, minimum) as results:
        if meanwhile is not None and parallel:
            meanwhile()
        yield from results


def worker_count(jobs: Sequence[Job], items: int, minimum: int = PARALLEL_MIN) -> int:
    """How many worker processes `started` uses for these jobs; 1 means none (the jobs
    are done in this process)."""
    workers = min(os.cpu_count() or 1, 8)
    # fork is only safe from a single-threaded process: `serve --build` builds from a
    # background thread while the server's threads run, so there it works in-process.
    threaded = threading.active_count() > 1
    if items < minimum or len(jobs) == 1 or threaded:
        return 1
    return workers


@contextmanager
def started(work: Callable[[Job], list[Result]], jobs: Sequence[Job], items: int,
            minimum: int = PARALLEL_MIN) -> Iterator[Iterator[list[Result]]]:
    """run_batches with the workers set going on entry, so that the caller can do work
    of its own before it reads the results, rather than while every other core waits.
    (In this process, see run_batches, the jobs are done as the results are read.)"""
    workers = worker_count(jobs, items, minimum)
    if workers == 1:
        yield map(work, jobs)
        return
    # Imported here: a warm run reads no file and needs no worker processes. ctypes is
    # for the workers' initializer: imported once here rather than in each of them.
    import ctypes  # noqa: F401
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # fork: workers inherit the loaded modules, so they start in milliseconds.
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"),
                             initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        yield pool.map(work, jobs)  # submits every job now


def _die_with_parent(parent: int) -> None:
    """Worker initializer. A build killed outright (SIGKILL, the OOM killer) cannot stop
    its workers, and forked workers never see their job queue close (each holds a copy of
    its writing end): they would wait forever, holding the build lock they inherited, and
    every later build would find the site locked. Linux ends them with their parent."""
    import ctypes  # already loaded by started(), which forked this worker

    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: a killed build's workers end when their work is done
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# What map_forked is running, set before its worker processes are forked so that they
# inherit it (the function and its items, with everything they refer to) instead of
# receiving it pickled.
_forked: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def map_forked(work: Callable[[Item], Result], items: Sequence[Item], weight: int,
               minimum: int = PARALLEL_MIN) -> Generator[Result, None, None]:
    """work(item) for each item, in order, each as soon as it is done (so that the
    caller can use one while the next ones are worked on): on every core when `weight`
    (units of work in all) reaches `minimum`. The worker processes are forked by this
    call, so `work` may be a closure over anything this process holds (articles already
    parsed, say): only each item's index and its result travel between processes. The
    workers end when the iterator is exhausted or closed."""
    global _forked
    _forked = (work, items)
    try:
        jobs = [[index] for index in range(len(items))]
        for batch in run_batches(_forked_job, jobs, weight, minimum):
            yield from batch
    finally:
        _forked = None


def _forked_job(indexes: list[int]) -> list[Any]:
    assert _forked is not None, "map_forked's work runs only in processes it forked"
    work, items = _forked
    return [work(items[index]) for index in indexes]
