"""workers.py: jobs on every core, and the caller's own work done meanwhile."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from syndicate.errors import ArticleError, ConfigError, ConfigProblem, OutputError, RenderError
from syndicate.workers import run_batches, worker_count


def _square_with_pid(job: list[int]) -> list[tuple[int, int]]:
    return [(n * n, os.getpid()) for n in job]


def _run_in_own_process(script: str, *args: str, timeout: float = 60,
                        workers: bool = True) -> str:
    """Run a test script in a process of its own, and give its output. The test process
    may have threads running (other tests' servers), and a process with threads does its
    jobs itself (workers.worker_count). `workers`: the script needs worker processes."""
    if workers and (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the jobs are done in this process")
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", script, *args], cwd=root, capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


_MEANWHILE = """
import os
from syndicate.workers import run_batches
from tests.test_workers import _square_with_pid

jobs = [list(range(start, start + 50)) for start in range(0, 500, 50)]
calls = []
results = [r for batch in run_batches(_square_with_pid, jobs, 500, minimum=200,
                                      meanwhile=lambda: calls.append(os.getpid()))
           for r in batch]
assert [square for square, _pid in results] == [n * n for n in range(500)]
assert calls == [os.getpid()], calls
assert os.getpid() not in {pid for _square, pid in results}  # done by worker processes
"""


def test_meanwhile_runs_once_in_this_process_while_workers_do_the_jobs() -> None:
    _run_in_own_process(_MEANWHILE)


def test_meanwhile_is_not_called_when_the_jobs_are_done_here() -> None:
    jobs = [[1, 2], [3]]
    calls: list[int] = []
    assert worker_count(jobs, 3, minimum=200) == 1
    results = list(run_batches(_square_with_pid, jobs, 3, minimum=200,
                               meanwhile=lambda: calls.append(1)))
    assert [[square for square, _pid in batch] for batch in results] == [[1, 4], [9]]
    assert {pid for batch in results for _square, pid in batch} == {os.getpid()}
    assert calls == []


_STREAMED = """
import os, sys, time
from pathlib import Path
from syndicate.workers import map_forked

marker = Path(sys.argv[1])
seen = {}  # a closure over this process's state: the workers inherit it by fork

def work(n):
    if n == 1:  # waits for the caller to have handled the first result
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return (n, marker.exists(), os.getpid())
    return (n, None, os.getpid())

results = []
for result in map_forked(work, [0, 1, 2, 3], weight=int(sys.argv[2]), minimum=200):
    if result[0] == 0:
        marker.touch()
    results.append(result)
assert [n for n, _saw, _pid in results] == [0, 1, 2, 3], results
assert results[1][1] is True, "the second job ended before the caller had the first result"
in_workers = os.getpid() not in {pid for _n, _saw, pid in results}
print("workers" if in_workers else "here")
"""


@pytest.mark.parametrize(("weight", "where"), [(1000, "workers"), (3, "here")])
def test_map_forked_gives_each_result_as_soon_as_it_is_done(tmp_path: Path, weight: int,
                                                             where: str) -> None:
    """The pipeline writes each feed while the workers render the next ones: the
    caller must have each result before the later jobs are done, in order."""
    assert _run_in_own_process(_STREAMED, str(tmp_path / "marker"), str(weight),
                               workers=where == "workers") == where


_CHILDREN = """
import os

def children():
    # This process's children that are still alive (zombies are dead and not waited for).
    found = set()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(pid))
    return found
"""

_POOL = _CHILDREN + """
import signal, sys, time
from syndicate import workers
from syndicate.workers import WorkerError, map_forked, run_batches, started

# A closure, and more job numbers than the shared pipe holds at once.
workers._PIPE_MOST = 4096
offset = 7
jobs = [[n] for n in range(5000)]
got = [r for batch in run_batches(lambda job: [(job[0] + offset, os.getpid())], jobs, 5000)
       for r in batch]
assert [n for n, _pid in got] == [n + offset for n in range(5000)]
assert os.getpid() not in {pid for _n, pid in got}
assert not children(), children()

# A job that raises: its exception is raised in its turn, after the results before it.
def fails_at_300(n):
    if n == 300:
        raise KeyError("job 300")
    return n
seen = []
try:
    for result in map_forked(fails_at_300, list(range(1000)), weight=1000):
        seen.append(result)
except KeyError as e:
    assert e.args == ("job 300",), e.args
else:
    raise AssertionError("no KeyError")
assert seen == list(range(300)), seen[-3:]
assert not children(), children()

# The caller stops early: the workers are ended, not waited for to finish every job.
started_at = time.monotonic()
with started(lambda n: time.sleep(3 if n else 0) or n, list(range(400)), 400) as results:
    assert next(results) == 0
assert time.monotonic() - started_at < 2
assert not children(), children()

# A worker killed outright: a clear error, not a hang.
def slow(n):
    time.sleep(0.02)
    return os.getpid()
try:
    for pid in map_forked(slow, list(range(400)), weight=400):
        os.kill(pid, signal.SIGKILL)
except WorkerError as e:
    assert "ended before its jobs were done" in str(e), e
else:
    raise AssertionError("no WorkerError")
assert not children(), children()
print("ok")
"""


def test_worker_processes_share_out_jobs_raise_in_turn_and_never_outlive_the_caller() -> None:
    """Jobs and work reach the workers by fork (closures too), however many jobs there
    are; a job's exception reaches the caller in that job's turn; a worker killed
    outright is an error, not a hang; and no worker is left running after any of it."""
    assert _run_in_own_process(_POOL, timeout=120) == "ok"


_ASIDE = _CHILDREN + """
import sys, threading, time
from pathlib import Path
from syndicate.errors import OutputError
from syndicate.workers import aside

# The work runs in another process while this one takes steps, which stop soon after
# the result comes: here the work waits for the fourth step (so the steps ran while it
# ran), and every step after that leaves it time to send its result.
flag = Path(sys.argv[1]) / "fourth step taken"
steps = []
def step(n):
    if n == 3:
        flag.touch()
    elif n > 3:
        time.sleep(0.05)
    steps.append(n)
def work():
    while not flag.exists():
        time.sleep(0.005)
    return os.getpid()
pid = aside(work, (lambda n=n: step(n) for n in range(100_000)))
assert pid != os.getpid()
assert 4 <= len(steps) < 100, len(steps)
assert not children(), children()

# No step at all, or more steps than the work needs: the result all the same.
assert aside(lambda: [1, 2, 3], ()) == [1, 2, 3]
assert aside(lambda: "done", [lambda: None] * 3) == "done"

# The work's error is raised here, whole.
def missing():
    raise OutputError("/archive", "the source folder does not exist")
try:
    aside(missing, ())
except OutputError as e:
    assert (e.path, e.reason) == ("/archive", "the source folder does not exist"), vars(e)
else:
    raise AssertionError("no OutputError")
assert not children(), children()

# With another thread running, no fork (see worker_count): the work is done here.
stop = threading.Event()
threading.Thread(target=stop.wait).start()
taken = []
assert aside(os.getpid, [lambda: taken.append(1)]) == os.getpid()
assert taken == []
stop.set()
print("ok")
"""


def test_aside_works_in_another_process_while_the_caller_takes_steps(tmp_path: Path) -> None:
    """workers.aside: the work's result (or its error, whole) comes back from a process
    of its own; the caller's steps run meanwhile and stop once the result is in."""
    assert _run_in_own_process(_ASIDE, str(tmp_path)) == "ok"


@pytest.mark.parametrize("error", [
    ArticleError("world/a.txt", "empty file"),
    RenderError("world", "atom", "cannot render"),
    OutputError("/srv/feeds", "the source folder does not exist"),
    ConfigError([ConfigProblem("config.yaml", 3, "channels.world.limit", "expected a number")]),
])
def test_errors_cross_processes_whole(error: Exception) -> None:
    """A worker's exception reaches the caller pickled: it must come back as it was
    raised, fields and message (unpickling calls the class with the message alone
    otherwise, which these refuse)."""
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert {k: getattr(back, k) for k in vars(error)} == vars(error)


_REFUSED = _CHILDREN + """
import errno
from syndicate.workers import aside, map_forked

# The system refuses another process (EAGAIN: the user's process limit). Tests run as
# root, whom that limit does not bind, so fork itself is made to answer as it would.
real_fork = os.fork
def refused():
    raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
os.fork = refused
here = os.getpid()
assert list(map_forked(lambda n: (n * n, os.getpid()), list(range(300)), 300)) == [
    (n * n, here) for n in range(300)]
assert aside(os.getpid, [lambda: None]) == here

# The second worker refused after the first started: that one is ended, the jobs done here.
forks = []
def second_refused():
    if forks:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    forks.append(1)
    return real_fork()
os.fork = second_refused
assert list(map_forked(lambda n: (n, os.getpid()), list(range(300)), 300)) == [
    (n, here) for n in range(300)]
assert forks == [1] and not children(), children()

# Any other failure is not hidden.
def broken():
    raise OSError(errno.EINVAL, "Invalid argument")
os.fork = broken
try:
    list(map_forked(lambda n: n, list(range(300)), 300))
except OSError as e:
    assert e.errno == errno.EINVAL
else:
    raise AssertionError("no OSError")
print("ok")
"""


def test_jobs_are_done_here_when_the_system_refuses_another_process() -> None:
    """A machine at its process limit (or out of memory) still gets its build, in one
    process: fork's EAGAIN is not a traceback."""
    assert _run_in_own_process(_REFUSED) == "ok"
