"""Run a function over batches of work on every core, or in this process when the batch
is too small for worker processes to pay off."""

from __future__ import annotations

import errno
import fcntl
import os
import pickle
import select
import signal
import struct
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Generic, TypeVar

from syndicate.errors import SyndicateError

Job = TypeVar("Job")
Result = TypeVar("Result")
Item = TypeVar("Item")

# Below this many items, starting worker processes costs more than it saves.
PARALLEL_MIN = 200


def run_batches(work: Callable[[Job], list[Result]], jobs: Sequence[Job],
                items: int, minimum: int = PARALLEL_MIN,
                meanwhile: Callable[[], None] | None = None) -> Iterator[list[Result]]:
    """Yield `work(job)` for each job, in order. `items` is how many items the jobs hold
    in all, and below `minimum` they are done in this process. `meanwhile`, when given, is
    called once in this process while worker processes do the jobs (and not at all when
    there are none): work of the caller's own that would otherwise wait its turn."""
    parallel = worker_count(jobs, items, minimum) > 1
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
def started(work: Callable[[Job], Result], jobs: Sequence[Job], items: int,
            minimum: int = PARALLEL_MIN) -> Iterator[Iterator[Result]]:
    """run_batches with the workers set going on entry, so that the caller can do work
    of its own before it reads the results, rather than while every other core waits.
    (In this process, see run_batches, the jobs are done as the results are read.)
    The workers are forked here: `work` and `jobs` may be anything this process holds,
    closures included; only each job's result travels, pickled."""
    workers = worker_count(jobs, items, minimum)
    pool = _Pool.fork(work, jobs, workers) if workers > 1 else None
    if pool is None:
        yield map(work, jobs)
        return
    try:
        yield pool.results()
    finally:
        pool.close()


def aside(work: Callable[[], Result], meanwhile: Iterable[Callable[[], object]]) -> Result:
    """work(), in a process forked for it, while this process takes the steps of
    `meanwhile`, one at a time, until the result begins to come in: the steps left are
    not taken. For work that waits on the system (a folder's stat calls) while this
    process has work that pays only sometimes (imports a later step may need): each step
    should be short, since the one under way when the result comes is finished first."""
    if threading.active_count() > 1:  # see worker_count
        return work()
    # The lone worker ends on its own, in a build killed outright, once it finds nobody
    # to send its result to: it is spared the 3-4 ms of _die_with_parent's import.
    pool: _Pool[None, Result] | None = _Pool.fork(lambda _job: work(), (None,), 1,
                                                  die_with_parent=False)
    if pool is None:
        return work()
    try:
        for step in meanwhile:
            if pool.sending():
                break
            step()
        return next(pool.results())
    finally:
        pool.close()


class WorkerError(SyndicateError):
    """A worker process ended before it sent back the results of the jobs it took."""


class _Pool(Generic[Job, Result]):
    """Worker processes forked from this one, for one list of jobs. Each takes the next
    job's number from a pipe they share (all the numbers are written to it at once, so
    no process hands jobs out) and sends each result back, pickled, on a pipe of its
    own. The jobs and the work are not sent at all: the workers inherit them by fork.

    concurrent.futures' process pool did this before, at a cost in the part of a cold
    build that runs on one core: importing it and multiprocessing took 25 ms, and its
    two threads in this process (handing jobs out, taking results in) competed with the
    main thread for the interpreter while the workers waited on them."""

    def __init__(self, work: Callable[[Job], Result], jobs: Sequence[Job], workers: int,
                 die_with_parent: bool = True) -> None:
        self.jobs = jobs
        self.done: dict[int, tuple[bool, Any]] = {}  # results that came before their turn
        self.pids: list[int] = []
        self.pipes: dict[int, bytearray] = {}  # each worker's result pipe, and what it sent
        numbers = b"".join(index.to_bytes(4, "little") for index in range(len(jobs)))
        self.numbers = memoryview(numbers)  # job numbers not yet in the shared pipe
        task_read, task_write = os.pipe()
        self.task_write: int | None = task_write
        _enlarge(task_write, len(numbers))  # what does not fit waits in `numbers`
        if die_with_parent:
            # ctypes is for the workers' _die_with_parent: imported once here, not in each.
            import ctypes  # noqa: F401

        try:
            for _ in range(workers):
                self._fork(work, task_read, die_with_parent)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(task_read)
        # Writes of at most PIPE_BUF bytes are whole or refused, never torn, and readers
        # read four bytes at a time: a job's number always reaches one worker whole.
        os.set_blocking(task_write, False)
        self._hand_out()

    @classmethod
    def fork(cls, work: Callable[[Job], Result], jobs: Sequence[Job], workers: int,
             die_with_parent: bool = True) -> _Pool[Job, Result] | None:
        """The pool, or None when the system will not give this process another or a
        pipe (a user's process or file limit, a machine out of memory), and the caller
        does the jobs itself: slower, but the build is made."""
        try:
            return cls(work, jobs, workers, die_with_parent)
        except OSError as e:
            if e.errno in _REFUSED:
                return None
            raise

    def _fork(self, work: Callable[[Job], Result], task_read: int, die_with_parent: bool) -> None:
        result_read, result_write = os.pipe()
        # A worker whose pipe is full waits, and the caller may be busy with work of its
        # own (run_batches' meanwhile) while a batch of articles, 250 KB pickled, comes back.
        _enlarge(result_write, _PIPE_MOST)
        parent = os.getpid()
        try:
            pid = os.fork()
        except BaseException:
            os.close(result_read)
            os.close(result_write)
            raise
        if pid == 0:  # the worker
            code = 1
            try:
                assert self.task_write is not None
                for pipe in (self.task_write, result_read, *self.pipes):
                    os.close(pipe)
                if die_with_parent:
                    _die_with_parent(parent)
                _serve(work, self.jobs, task_read, result_write)
                code = 0
            finally:
                os._exit(code)
        os.close(result_write)
        self.pids.append(pid)
        self.pipes[result_read] = bytearray()

    def _hand_out(self) -> None:
        """Write what job numbers the shared pipe takes now; close it after the last."""
        assert self.task_write is not None
        while self.numbers:
            try:
                written = os.write(self.task_write, self.numbers[:select.PIPE_BUF])
            except BlockingIOError:
                return
            except BrokenPipeError:  # every worker has ended: results() tells the caller
                break
            self.numbers = self.numbers[written:]
        os.close(self.task_write)  # the workers end when they find it empty
        self.task_write = None

    def results(self) -> Iterator[Result]:
        """Each job's result in the jobs' order, as soon as it and those before it are in.
        A job that raised raises here, in its turn."""
        poller = select.poll()
        for pipe in self.pipes:
            poller.register(pipe, select.POLLIN)
        if self.task_write is not None:
            poller.register(self.task_write, select.POLLOUT)
        for index in range(len(self.jobs)):
            while index not in self.done:
                if not self.pipes:
                    raise WorkerError("a worker process ended before its jobs were done "
                                      "(killed, or out of memory?)")
                for fd, _event in poller.poll():
                    if fd == self.task_write:
                        self._hand_out()
                        if self.task_write is None:
                            poller.unregister(fd)
                    elif not self._take_in(fd):
                        poller.unregister(fd)
            ok, value = self.done.pop(index)
            if not ok:
                raise value
            yield value

    def sending(self) -> bool:
        """Whether a result has begun to come in (or a worker has ended), without waiting."""
        return bool(select.select(list(self.pipes), [], [], 0)[0])

    def _take_in(self, pipe: int) -> bool:
        """Read what a worker sent; False when it has ended (its pipe is closed)."""
        data = os.read(pipe, _READ_SIZE)
        if not data:
            os.close(pipe)
            del self.pipes[pipe]
            return False
        received = self.pipes[pipe]
        received += data
        while len(received) >= _HEADER.size:
            index, size = _HEADER.unpack_from(received)
            if len(received) < _HEADER.size + size:
                break
            self.done[index] = pickle.loads(received[_HEADER.size:_HEADER.size + size])
            del received[:_HEADER.size + size]
        return True

    def close(self) -> None:
        """End the workers: at once when some jobs were not done (the caller stopped
        early, or failed), and wait for them."""
        if self.task_write is not None or self.pipes:
            for pid in self.pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.task_write is not None:
            os.close(self.task_write)
            self.task_write = None
        for pipe in self.pipes:
            os.close(pipe)
        self.pipes.clear()
        for pid in self.pids:
            os.waitpid(pid, 0)
        self.pids.clear()


def _enlarge(pipe: int, size: int) -> None:
    """Make the pipe hold `size` bytes, or as many as Linux lets it. Elsewhere (no
    F_SETPIPE_SZ), or when refused, it keeps its own size: transfers take more turns."""
    with suppress(OSError, AttributeError):
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, min(size, _PIPE_MOST))


# fork's and pipe's answers when the system has none to give (EAGAIN: the process limit).
_REFUSED = {errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE}
_HEADER = struct.Struct("<IQ")  # a result's job number and its pickle's length
_READ_SIZE = 1 << 16  # (a larger read would be a fresh mapping of memory each time)
_PIPE_MOST = 1 << 20  # what Linux lets a process make a pipe hold (fs.pipe-max-size)


def _serve(work: Callable[[Job], Result], jobs: Sequence[Job], tasks: int, results: int) -> None:
    """A worker's loop: take a job's number, do the job, send its result back (or the
    exception it raised), until no job is left."""
    while len(number := os.read(tasks, 4)) == 4:
        index = int.from_bytes(number, "little")
        try:
            data = pickle.dumps((True, work(jobs[index])), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # sent back: the caller raises it in the job's turn
            try:
                data = pickle.dumps((False, e), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # an exception that does not pickle: its text does
                data = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
        message = memoryview(_HEADER.pack(index, len(data)) + data)
        while message:
            message = message[os.write(results, message):]


def _die_with_parent(parent: int) -> None:
    """A build killed outright (SIGKILL, the OOM killer) cannot stop its workers, which
    would go on holding the build lock they inherited, and every later build would find
    the site locked. Linux ends them with their parent."""
    import ctypes  # already loaded by _Pool, which forked this worker

    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: a killed build's workers end when their jobs are handed out
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def map_forked(work: Callable[[Item], Result], items: Sequence[Item], weight: int,
               minimum: int = PARALLEL_MIN) -> Generator[Result, None, None]:
    """work(item) for each item, in order, each as soon as it is done (so that the
    caller can use one while the next ones are worked on): on every core when `weight`
    (units of work in all) reaches `minimum`. The worker processes are forked by this
    call, so `work` may be a closure over anything this process holds (articles already
    parsed, say): only each item's index and its result travel between processes. The
    workers end when the iterator is exhausted or closed."""
    with started(work, items, weight, minimum) as results:
        yield from results
