"""The `syndicate` command and `python -m syndicate`: the command line (cli.py), in a
process set up for it first."""

import gc
import os
import sys
import threading


def run() -> None:
    # CPython's cycle collector runs after every 700 new objects and scans the young
    # objects that survived. Importing syndicate and building make hundreds of thousands
    # of objects that live until the process ends and form no cycles: the collector ran
    # 220 times in a cold build of 10,000 articles (85-130 ms of the main process's CPU)
    # and 30 to 100 times in one that finds one new article or none (8-17 ms). After
    # every 100,000 new objects instead: 28 times and 17 ms, and not at all. mypy does
    # the same. It is set before cli.py is imported, because importing is where a small
    # build's collections happen; worker processes inherit it.
    gc.set_threshold(100_000, *gc.get_threshold()[1:])
    from syndicate.cli import main

    # What importing made (modules, classes, functions: most of a warm build's objects)
    # lives until the process ends: frozen, the collector never scans it again, and the
    # count of new objects starts from zero. Without this, the one collection of a cold
    # 10k build scanned it all with the archive's entries (25-35 ms, in the part of the
    # build that uses one core).
    gc.freeze()
    code = main()
    if threading.active_count() > 1:
        sys.exit(code)  # let the other threads finish as usual
    exit_now(code)


def exit_now(code: int) -> None:
    """End the process without tearing the interpreter down. Freeing every object one by
    one (the modules, a build's entries and articles) took 40-50 ms after a cold build
    of 10,000 articles, for nothing: the OS takes the memory back at once. mypy ends the
    same way. Everything the command opened is closed by now (the cache, the build lock,
    the files it wrote); only Python's own buffers of stdout and stderr are left to flush."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            pass  # the reader left (`syndicate show FILE | head`): fine, as in cli.main
        except (OSError, ValueError):  # a full disk, a closed stream
            code = code or 120  # what Python itself exits with when this flush fails
    os._exit(code)


if __name__ == "__main__":
    run()
