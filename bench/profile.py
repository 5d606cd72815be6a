"""Profile syndicate's cold, warm and one-new builds on a benchmark archive.

    python bench/profile.py 10000

Uses the corpus, config and installed syndicate that bench/run.py made (bench/corpus/<size>,
bench/out/syndicate/<size>/config.yaml, bench/out/venv/; run it first), and writes, for each scenario, the
`python -m cProfile -s cumtime -m syndicate build` listing to
bench/out/profile-<size>-<scenario>.txt, and the first lines of each to stdout.

cProfile sees only the main process: with worker processes, the parsing they do shows as
time waiting in `pool.map`. `--one-core` makes syndicate see one CPU (os.cpu_count() = 1),
so it parses in the main process and the listing shows where that time goes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run  # noqa: E402

ONE_CORE = ("import os, sys, runpy; os.cpu_count = lambda: 1; "
            "sys.argv = ['syndicate'] + sys.argv[1:]; runpy.run_module('syndicate', run_name='__main__')")


def profile(config: Path, out: Path, one_core: bool, lines: int, env: dict[str, str]) -> str:
    target = ["-m", "syndicate"]
    if one_core:  # cProfile cannot run `-c` code; a tiny script file stands in for it

        # Not beside bench/out/syndicate/, which would shadow the package.
        script = run.OUT / "profile" / "one_core_syndicate.py"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(ONE_CORE.replace("; ", "\n") + "\n")
        target = [str(script)]
    cmd = [str(run.PYTHON), "-m", "cProfile", "-s", "cumtime", *target, "build", "-c", str(config)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env,
                          cwd=run.run_folder())
    out.write_text(done.stdout)
    return "\n".join(done.stdout.splitlines()[:lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("size", type=int, nargs="?", default=10000)
    parser.add_argument("--one-core", action="store_true", help="parse in the main process")
    parser.add_argument("--lines", type=int, default=45, help="lines of each listing to print")
    parser.add_argument("--live", action="store_true",
                        help="profile syndicate/ in the working tree, not the copy the last "
                             "bench/run.py installed (bench/out/venv/)")
    args = parser.parse_args()
    (run.OUT / "profile").mkdir(parents=True, exist_ok=True)
    if args.live:
        run.use_code(live=True)
    elif not run.PYTHON.exists():
        sys.exit(f"{run.VENV} is missing: run bench/run.py first")
    else:
        run.CODE = run.SNAPSHOT
    env = run.syndicate_env()
    print(f"syndicate code: {run.CODE / 'syndicate'} ({run.code_digest()})")
    label = run.label(args.size)
    config = run.OUT / "syndicate" / label / "config.yaml"
    if not config.exists():
        sys.exit(f"{config} is missing: run bench/run.py --sizes {args.size} first")
    work = config.parent
    source = run.corpus(args.size)
    suffix = "-1core" if args.one_core else ""
    for name in (".syndicate", "feeds"):
        shutil.rmtree(work / name, ignore_errors=True)
    for scenario in ("cold", "warm", "one-new"):
        path = source / f"{args.size:07d}-bench-new.txt"
        if scenario == "one-new":
            path.write_text(run.new_story(args.size), encoding="utf-8")
        try:
            out = run.OUT / f"profile-{label}-{scenario}{suffix}.txt"
            print(f"==== {scenario}{suffix}: {out.relative_to(run.ROOT)}")
            print(profile(config, out, args.one_core, args.lines, env))
        finally:
            path.unlink(missing_ok=True)
    subprocess.run([str(run.PYTHON), "-m", "syndicate", "build", "-c", str(config)], check=True,
                   env=env, cwd=run.run_folder())


if __name__ == "__main__":
    main()
