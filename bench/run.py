"""Benchmark syndicate against a naive BeautifulSoup + feedgen script and Hugo.

    python bench/run.py --sizes 1000 10000 100000 --repeat 5 --repeat-large 3

For each size: the synthetic archive is generated (cached in bench/corpus/<1k|10k|…>,
made again when what make_corpus.py writes changes) and laid out as a Hugo site
(bench/out/hugo/). Then, in rounds, each tool runs its scenarios, the tools taking turns
(the order rotates from round to round), every run timed by `/usr/bin/time -v` (wall
time, CPU time, max RSS):

- syndicate cold (no cache, no output), warm (nothing changed), one new article (one
  file added, then removed again after the run);
- naive cold (no output) and warm (output present; it has no cache, so the same work);
- hugo cold (no public/, resources/ or cache dir) and warm (public/ present).

syndicate is installed from a copy of the project taken at the start
(bench/out/snapshot/) into a venv (bench/out/venv/), as the README's Quick start installs
it, and run as `syndicate build`: every round measures the same code while developers
edit the working tree (`--live` runs the working tree with the venv's interpreter).
Each run also records the whole process tree's peak memory and the CPU that other
processes took meanwhile; a short round they disturbed is redone.

Writes bench/out/results.json (every run), bench/out/results.md (medians and ratios)
and docs/performance-time.png (time against archive size, log-log).
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.etree

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
import hugo_site  # noqa: E402
import make_corpus  # noqa: E402

OUT = BENCH / "out"
CORPORA = BENCH / "corpus"
PLOT = ROOT / "docs" / "performance-time.png"
CHANNELS = ("all", *make_corpus.SECTIONS)
TICK = os.sysconf("SC_CLK_TCK")
LARGE = 50_000  # sizes from here on get --repeat-large rounds
SCENARIOS = {
    "syndicate": ("cold", "warm", "one new"),
    "naive": ("cold", "warm"),
    "hugo": ("cold", "warm"),
}


def label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


# --- the machine -----------------------------------------------------------------------

def busy_ticks() -> tuple[int, int]:
    """(busy, steal) CPU ticks of the whole machine so far, from /proc/stat: time spent
    running processes, and time the hypervisor gave our virtual CPUs to someone else."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (
            int(x) for x in f.readline().split()[1:9])
    return user + nice + system + irq + softirq, steal


def others_busy(seconds: float = 1.0) -> float:
    """How many cores are busy over `seconds` while we are idle: load from other users."""
    b0, _ = busy_ticks()
    time.sleep(seconds)
    b1, _ = busy_ticks()
    return (b1 - b0) / TICK / seconds


def wait_for_quiet(limit: float, max_wait: float) -> float:
    """Wait (up to max_wait seconds) until other processes use fewer than `limit` cores;
    the last measured figure."""
    deadline = time.monotonic() + max_wait
    busy = others_busy(0.5)
    while busy >= limit and time.monotonic() < deadline:
        busy = others_busy(1.0)
    return busy


def machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    hugo = subprocess.run(["hugo", "version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--short", "syndicate"],
                           capture_output=True, text=True).stdout.split("\n")
    from syndicate import __version__
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem / 2**20, 1),
        "python": platform.python_version(), "hugo": hugo, "kernel": platform.release(),
        "syndicate": __version__, "git_commit": commit,
        "syndicate_uncommitted_files": len([d for d in dirty if d.strip()]),
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i % 7
    return x


def _spin_in(processes: int, n: int) -> float:
    from multiprocessing import get_context

    ctx = get_context("fork")
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_spin, args=(n,)) for _ in range(processes)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return time.perf_counter() - t0


def cpu_scaling(n: int = 15_000_000, tries: int = 5) -> dict[str, object]:
    """Run a CPU-bound loop in one process, then the same loop in two processes at once,
    `tries` times: how much more work two 'cores' really do (2.0 = two real cores)."""
    trials = []
    for _ in range(tries):
        busy = wait_for_quiet(0.3, 20)
        one, two = _spin_in(1, n), _spin_in(2, n)
        trials.append({"one_process_s": round(one, 3), "two_processes_s": round(two, 3),
                       "speedup": round(2 * one / two, 2), "others_cores_before": round(busy, 2)})
    best = 2 * min(t["one_process_s"] for t in trials) / min(t["two_processes_s"] for t in trials)
    return {"trials": trials, "median_speedup": statistics.median(t["speedup"] for t in trials),
            "best_times_speedup": round(best, 2)}


# --- one timed run ---------------------------------------------------------------------

class TreeMemory(threading.Thread):
    """Samples the summed RSS and PSS of a process and all its descendants (syndicate's
    worker processes are not counted in /usr/bin/time's max RSS, which is the largest
    single process)."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peak_rss = self.peak_pss = 0
        self.done = threading.Event()

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(name))
        pids, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(children.get(pid, ()))
        return pids

    def run(self) -> None:
        while not self.done.wait(self.interval):
            rss = pss = 0
            for pid in self.tree():
                try:
                    with open(f"/proc/{pid}/smaps_rollup") as f:
                        for line in f:
                            if line.startswith("Rss:"):
                                rss += int(line.split()[1])
                            elif line.startswith("Pss:"):
                                pss += int(line.split()[1])
                except (OSError, ValueError):
                    continue
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)


TIME_FIELDS = {
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall",
    "User time (seconds)": "user",
    "System time (seconds)": "sys",
    "Maximum resident set size (kbytes)": "max_rss_kb",
    "Percent of CPU this job got": "cpu_percent",
}


def parse_time(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        key, _, value = line.strip().rpartition(": ")
        name = TIME_FIELDS.get(key)
        if name == "wall":
            seconds = 0.0
            for part in value.split(":"):
                seconds = seconds * 60 + float(part)
            out[name] = seconds
        elif name == "cpu_percent":
            out[name] = float(value.rstrip("%") or 0)
        elif name:
            out[name] = float(value)
    return out


def timed(cmd: list[str], quiet_limit: float, max_wait: float,
          env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, float]:
    """Run `cmd` under /usr/bin/time -v; its figures, the machine's load before it, and the
    CPU other processes used while it ran."""
    os.sync()
    before_busy = wait_for_quiet(quiet_limit, max_wait)
    load1 = os.getloadavg()[0]
    report = OUT / ".time.txt"
    b0, s0 = busy_ticks()
    proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(report), *cmd],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    memory = TreeMemory(proc.pid)
    memory.start()
    out, err = proc.communicate()
    memory.done.set()
    memory.join()
    b1, s1 = busy_ticks()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{out.decode()}\n{err.decode()}")
    figures = parse_time(report.read_text())
    own = figures["user"] + figures["sys"]
    figures.update(
        tree_peak_rss_kb=memory.peak_rss, tree_peak_pss_kb=memory.peak_pss,
        load1_before=round(load1, 2), others_cores_before=round(before_busy, 2),
        others_cores_during=round(max(0.0, (b1 - b0) / TICK - own) / max(figures["wall"], 0.01), 2),
        steal_cores_during=round((s1 - s0) / TICK / max(figures["wall"], 0.01), 2),
    )
    return figures


# --- the corpora and the tools ---------------------------------------------------------

def corpus(size: int) -> Path:
    """The archive of `size` articles, generated unless an identical one is cached."""
    folder = CORPORA / label(size)
    stamp = CORPORA / f"{label(size)}.stamp"
    # What the generator writes now (its first few hundred files), not its source text:
    # an edit that changes no output does not cost a regeneration.
    sample = hashlib.sha256()
    for name, text in itertools.islice(make_corpus.stories(size), 300):
        sample.update(f"{name}\0{text}\0".encode())
    want = f"{sample.hexdigest()} {size}"
    if not folder.exists() or not stamp.exists() or stamp.read_text() != want:
        print(f"  generating {size} articles in {folder}", flush=True)
        if folder.exists():
            shutil.rmtree(folder)
        stamp.unlink(missing_ok=True)
        make_corpus.write_corpus(size, folder)
        stamp.write_text(want)
    return folder


def hugo_layout(size: int, source: Path, template: str) -> Path:
    name = label(size) + ("" if template == "embedded" else f"-{template}")
    site = OUT / "hugo" / name
    stamp = OUT / "hugo" / f"{name}.stamp"
    want = (CORPORA / f"{label(size)}.stamp").read_text() + " " + hashlib.sha256(
        (BENCH / "hugo_site.py").read_bytes()).hexdigest()
    if not site.exists() or not stamp.exists() or stamp.read_text() != want:
        print(f"  laying out the Hugo site in {site}", flush=True)
        hugo_site.lay_out(source, site, template)
        stamp.write_text(want)
    return site


def syndicate_config(size: int, source: Path) -> Path:
    import yaml

    work = OUT / "syndicate" / label(size)
    work.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((BENCH / "syndicate.yaml").read_text(encoding="utf-8"))
    assert tuple(config["channels"]) == CHANNELS, "bench/syndicate.yaml is out of step with SECTIONS"
    config["site"].update(source=str(source), output=str(work / "feeds"))
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


SNAPSHOT = OUT / "snapshot"  # the project as it was when the run started
VENV = OUT / "venv"  # where the snapshot is installed, as the README's Quick start does
CODE = ROOT  # the measured source: SNAPSHOT, or ROOT with --live
SYNDICATE = [str(VENV / "bin" / "syndicate")]  # the command: see use_code()
PYTHON = VENV / "bin" / "python"


def code_digest(root: Path | None = None) -> str:
    """A short digest of syndicate's source: the working tree is shared with developers
    who keep changing it, so each round records which code it measured."""
    digest = hashlib.sha256()
    base = root or CODE
    for path in sorted((base / "syndicate").rglob("*.py")):
        digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def take_snapshot() -> Path:
    """Copy the package and what installing it needs, as they are now, to
    bench/out/snapshot/, so that every run measures the same code while developers edit
    the working tree."""
    shutil.rmtree(SNAPSHOT, ignore_errors=True)
    shutil.copytree(ROOT / "syndicate", SNAPSHOT / "syndicate",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, SNAPSHOT / name)
    return SNAPSHOT


def install(source: Path) -> None:
    """Install `source` into bench/out/venv the way users install syndicate (README, Quick
    start: `pip install .` into a fresh venv, which also byte-compiles it), with
    BeautifulSoup for the naive script. The venv is made once; the package is installed
    again on every run. Measuring syndicate there, rather than from this interpreter,
    also leaves out what this machine's own site-packages load at every start (here
    about 50 ms: an editable install's finder and a .pth hook), which a user's venv does
    not have."""
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "beautifulsoup4>=4.12"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps",
                    str(source)], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", str(source)], check=True)  # new deps


def use_code(live: bool) -> None:
    """Set up what is measured: the installed snapshot, or (--live) the working tree run
    with the venv's interpreter."""
    global CODE, SYNDICATE
    if live:
        install(ROOT)  # for the dependencies; the working tree comes first on the path
        SYNDICATE = [str(PYTHON), "-m", "syndicate"]
    else:
        CODE = take_snapshot()
        install(CODE)
    where = subprocess.run([str(PYTHON), "-c", "import syndicate; print(syndicate.__file__)"],
                           capture_output=True, text=True, env=syndicate_env(), cwd=run_folder(),
                           check=True).stdout.strip()
    package = Path(where).parent
    assert code_digest(package.parent) == code_digest(), f"measuring {package}, not {CODE}"


def run_folder() -> Path:
    """Where syndicate runs from: with --live the working tree (first on sys.path with -m)."""
    return ROOT if CODE == ROOT else OUT


def syndicate_env() -> dict[str, str]:
    """The environment to run syndicate in. Python may write its bytecode caches (this
    machine sets PYTHONDONTWRITEBYTECODE, which would make every --live run compile every
    module it imports)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def new_story(size: int) -> str:
    """A new story in 'world', newer than every article in the archive of `size`."""
    import random
    end = make_corpus.START + timedelta(seconds=make_corpus.SPAN_SECONDS + 2 * 86400)
    n = size * len(make_corpus.SECTIONS)  # n % 10 == 0: section 'world'; no clash with 0..size-1
    return make_corpus.article(random.Random(n), n, end + timedelta(hours=1))


class Tools:
    def __init__(self, size: int, args: argparse.Namespace) -> None:
        self.size = size
        self.source = corpus(size)
        self.site = hugo_layout(size, self.source, args.hugo_template)
        self.config = syndicate_config(size, self.source)
        self.syn_work = self.config.parent
        self.naive_out = OUT / "naive" / label(size)
        self.hugo_cache = self.site.parent / f"{self.site.name}.cache"
        self.quiet, self.max_wait = args.quiet_cores, args.max_wait
        self.naive_warm_large = args.naive_warm_large
        self.new_file = self.source / f"{size:07d}-bench-new.txt"
        self.new_file.unlink(missing_ok=True)

    def run(self, cmd: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
        # Run from the folder that holds the measured package: `python -m` puts the
        # current folder first on sys.path (from ROOT, ./syndicate/ would beat the snapshot).
        return timed(cmd, self.quiet, self.max_wait, env, cwd=run_folder())

    def syndicate(self) -> dict[str, dict[str, float]]:
        cmd = [*SYNDICATE, "build", "-c", str(self.config)]
        code, env = code_digest(), syndicate_env()
        for name in (".syndicate", "feeds"):
            shutil.rmtree(self.syn_work / name, ignore_errors=True)
        results = {"cold": self.run(cmd, env), "warm": self.run(cmd, env)}
        self.new_file.write_text(new_story(self.size), encoding="utf-8")
        try:
            results["one new"] = self.run(cmd, env)
        finally:
            self.new_file.unlink(missing_ok=True)
        subprocess.run(cmd, check=True, env=env, cwd=run_folder())  # untimed: back to the archive as it is
        if code_digest() != code:
            code = "changed during the round"
        for figures in results.values():
            figures["code"] = code  # type: ignore[assignment]
        return results

    def naive(self) -> dict[str, dict[str, float]]:
        cmd = [str(PYTHON), str(BENCH / "naive.py"), str(self.source), str(self.naive_out)]
        shutil.rmtree(self.naive_out, ignore_errors=True)
        cold = self.run(cmd)
        if self.size >= LARGE and not self.naive_warm_large:
            # It has no cache: a second run does the same work again. At this size that
            # costs minutes per round, so the cold figures stand for it.
            return {"cold": cold, "warm": dict(cold, same_as_cold=1)}
        return {"cold": cold, "warm": self.run(cmd)}

    def hugo(self) -> dict[str, dict[str, float]]:
        cmd = ["hugo", "--source", str(self.site), "--cacheDir", str(self.hugo_cache), "--quiet"]
        for path in (self.site / "public", self.site / "resources", self.hugo_cache):
            shutil.rmtree(path, ignore_errors=True)
        return {"cold": self.run(cmd), "warm": self.run(cmd)}

    # -- do the three tools publish the same items? --
    def items(self, tool: str, channel: str) -> list[tuple[str, float]]:
        path = {"syndicate": self.syn_work / "feeds" / f"{channel}.xml",
                "naive": self.naive_out / f"{channel}.xml",
                "hugo": self.site / "public" / ("index.xml" if channel == "all" else f"{channel}/index.xml"),
                }[tool]
        root = lxml.etree.parse(str(path)).getroot()
        return [(item.findtext("title"),
                 email.utils.parsedate_to_datetime(item.findtext("pubDate")).timestamp())
                for item in root.iter("item")]

    def agreement(self) -> dict[str, object]:
        """Per channel: item counts per tool, and whether the three list the same items
        (title and publication instant) in the same order."""
        out: dict[str, object] = {}
        for channel in CHANNELS:
            lists = {tool: self.items(tool, channel) for tool in SCENARIOS}
            out[channel] = {"items": {t: len(v) for t, v in lists.items()},
                            "same": lists["syndicate"] == lists["naive"] == lists["hugo"]}
        return out


def measure(size: int, rounds: int, args: argparse.Namespace) -> dict[str, object]:
    tools = Tools(size, args)
    files = [p for p in tools.source.iterdir() if p.suffix == ".txt"]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        t: {s: [] for s in scenarios} for t, scenarios in SCENARIOS.items()}
    order = list(SCENARIOS)
    agreement = None
    disturbed: list[dict[str, object]] = []
    for r in range(rounds):
        turn = order[r % 3:] + order[:r % 3]
        for tool in turn:
            got = getattr(tools, tool)()
            for _ in range(args.retries):
                # Other users' processes share the 2 cores: a round they disturbed is done
                # again (when it is short enough to redo), and the least disturbed kept.
                worst = max(f["others_cores_during"] for f in got.values())
                if worst <= args.quiet_cores or sum(f["wall"] for f in got.values()) > args.redo_limit:
                    break
                again = getattr(tools, tool)()
                if max(f["others_cores_during"] for f in again.values()) < worst:
                    got, again = again, got
                disturbed.append({"round": r + 1, "tool": tool, "runs": again})
                print(f"  {label(size):>5} round {r + 1}/{rounds} {tool:9} redone: others used "
                      f"{worst:.2f} cores", flush=True)
            for scenario, figures in got.items():
                runs[tool][scenario].append(figures)
                print(f"  {label(size):>5} round {r + 1}/{rounds} {tool:9} {scenario:8} "
                      f"{figures['wall']:7.2f} s {figures['max_rss_kb'] / 1024:6.0f} MB "
                      f"(tree {figures['tree_peak_pss_kb'] / 1024:4.0f} MB PSS) "
                      f"others {figures['others_cores_during']:.2f} cores", flush=True)
        if agreement is None:
            agreement = tools.agreement()
            differ = [c for c, v in agreement.items() if not v["same"]]  # type: ignore[index]
            print(f"  {label(size):>5} the three tools' RSS feeds list the same items: "
                  f"{'yes' if not differ else 'NO, in ' + ', '.join(differ)}", flush=True)
    codes = sorted({str(f["code"]) for f in runs["syndicate"]["cold"]})
    if len(codes) > 1:
        print(f"  note: syndicate's code changed during the rounds: {codes}", flush=True)
    medians = {t: {s: {k: statistics.median(run[k] for run in v)
                       for k in ("wall", "user", "sys", "max_rss_kb", "tree_peak_rss_kb",
                                 "tree_peak_pss_kb", "others_cores_during", "steal_cores_during",
                                 "load1_before")}
                   for s, v in scen.items()} for t, scen in runs.items()}
    return {"size": size, "files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "rounds": rounds, "agreement": agreement, "medians": medians, "runs": runs,
            "disturbed_runs_set_aside": disturbed, "syndicate_code": codes}


# --- the report ------------------------------------------------------------------------

def ratios(m: dict) -> dict[str, float]:
    s, n, h = m["syndicate"], m["naive"], m["hugo"]
    return {
        "syndicate cold / hugo cold": s["cold"]["wall"] / h["cold"]["wall"],
        "syndicate warm / hugo warm": s["warm"]["wall"] / h["warm"]["wall"],
        "syndicate one new / hugo warm": s["one new"]["wall"] / h["warm"]["wall"],
        "naive cold / syndicate cold": n["cold"]["wall"] / s["cold"]["wall"],
        "naive warm / syndicate warm": n["warm"]["wall"] / s["warm"]["wall"],
    }


def markdown(results: dict) -> str:
    lines = ["| archive | tool | run | median wall | CPU (user+sys) | max RSS | tree PSS "
             "| others' load | steal |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results["sizes"]:
        for tool, scen in r["medians"].items():
            for scenario, m in scen.items():
                if r["runs"][tool][scenario][0].get("same_as_cold"):
                    lines.append(f"| {label(r['size'])} ({r['files']} files) | {tool} | {scenario} | "
                                 "= cold (not run: no cache) | | | | | |")
                    continue
                lines.append(
                    f"| {label(r['size'])} ({r['files']} files) | {tool} | {scenario} | {m['wall']:.2f} s | "
                    f"{m['user'] + m['sys']:.2f} s | {m['max_rss_kb'] / 1024:.0f} MB | "
                    f"{m['tree_peak_pss_kb'] / 1024:.0f} MB | {m['others_cores_during']:.2f} | "
                    f"{m['steal_cores_during']:.2f} |")
    lines += ["", "| archive | " + " | ".join(ratios(results["sizes"][0]["medians"])) + " |",
              "|---|" + "---:|" * 5]
    for r in results["sizes"]:
        lines.append(f"| {label(r['size'])} | " + " | ".join(
            f"{v:.2f}×" for v in ratios(r["medians"]).values()) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size"] for r in results["sizes"]]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    styles = {("syndicate", "cold"): ("tab:blue", "-", "o"),
              ("syndicate", "warm"): ("tab:blue", "--", "s"),
              ("syndicate", "one new"): ("tab:blue", ":", "^"),
              ("naive", "cold"): ("tab:red", "-", "o"),
              ("hugo", "cold"): ("tab:green", "-", "o"),
              ("hugo", "warm"): ("tab:green", "--", "s")}
    for (tool, scenario), (color, line, marker) in styles.items():
        ax.plot(sizes, [r["medians"][tool][scenario]["wall"] for r in results["sizes"]],
                color=color, linestyle=line, marker=marker, label=f"{tool} {scenario}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("articles in the archive")
    ax.set_ylabel("wall time, median (s)")
    ax.set_title("11 feeds of 50 items: syndicate, naive BeautifulSoup+feedgen, Hugo")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per size (default 5)")
    parser.add_argument("--repeat-large", type=int, default=3,
                        help="rounds for sizes of 50,000 and more (default 3)")
    parser.add_argument("--quiet-cores", type=float, default=0.3,
                        help="a quiet machine: other processes use fewer cores than this "
                             "(waited for before each run; default 0.3)")
    parser.add_argument("--max-wait", type=float, default=10.0,
                        help="wait at most this many seconds for a quiet machine (default 10)")
    parser.add_argument("--retries", type=int, default=2,
                        help="redo a tool's round up to this many times when other processes used "
                             "more than --quiet-cores during it (default 2)")
    parser.add_argument("--redo-limit", type=float, default=60.0,
                        help="only redo rounds that took fewer seconds than this (default 60)")
    parser.add_argument("--naive-warm-large", action="store_true",
                        help="also time the naive script's second run at sizes of 50,000 and more "
                             "(by default its cold figures stand for it there: it has no cache)")
    parser.add_argument("--hugo-template", choices=("embedded", "full"), default="embedded",
                        help="Hugo's feed template: its built-in one (summaries; the default) or "
                             "bench/hugo_site.py's with full content (see there)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help="where results.json and results.md go (default bench/out)")
    parser.add_argument("--plot", type=Path, default=PLOT,
                        help="where the plot goes (default docs/performance-time.png)")
    parser.add_argument("--live", action="store_true",
                        help="measure syndicate/ in the working tree as it changes, instead of a "
                             "copy taken at the start (bench/out/snapshot/)")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("needs GNU time: apt-get install time")
    OUT.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    use_code(args.live)
    started = datetime.now(UTC)
    results: dict = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
                     "command": " ".join(sys.argv[1:]), "hugo_template": args.hugo_template,
                     "syndicate_code": {"measured": "working tree, live" if args.live else
                                        "snapshot of the working tree at the start",
                                        "digest": code_digest()},
                     "uptime_before": uptime()}
    print(f"machine: {results['machine']}", flush=True)
    results["cpu_scaling"] = cpu_scaling()
    print(f"cpu scaling, 1 → 2 processes: {results['cpu_scaling']['median_speedup']}×", flush=True)
    results["sizes"] = []
    for size in args.sizes:
        rounds = args.repeat_large if size >= LARGE else args.repeat
        results["sizes"].append(measure(size, rounds, args))
        (args.out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    results["uptime_after"] = uptime()
    results["minutes"] = round((datetime.now(UTC) - started).total_seconds() / 60, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    print(table)
    if not args.no_plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
