"""The `syndicate` command and `python -m syndicate`: the command line (cli.py), in a
process set up for it first."""

import gc
import sys


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

    sys.exit(main())


if __name__ == "__main__":
    run()
