"""The generative example's main job: prompts in, the best images out, with figures and a picture.

    python examples/generative/main.py [--prompts 2000] [--out-dir DIR]

1. Writes ``DIR/prompts.jsonl``: ``--prompts`` prompts, each a digit and a style seed.
2. Runs ``legato map examples/generative/pipeline.py:generate DIR/prompts.jsonl -o
   DIR/results.jsonl --store DIR/legato.db`` as a subprocess (it draws its own progress bar).
   The store under DIR records the run and caches the generators and the scorer: run the job
   again with the same DIR and every call is answered from the cache.
3. Reads the run back (``legato show RUN --json``), prints the figures and writes them to
   ``DIR/summary.json``, and draws ``DIR/grid.png``.

A run killed part-way is finished with ``legato resume RUN --store DIR/legato.db``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generative import prompts, summary

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline.py"
OUT_DIR = HERE / "out"


def legato_command() -> list[str]:
    """The ``legato`` CLI of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "legato"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("legato")
    if found is None:
        return [sys.executable, "-m", "legato.cli"]
    return [found]


def store_of(out_dir: Path) -> Path:
    """The run store of a job's output directory."""
    return out_dir / "legato.db"


def map_command(data: Path, out_dir: Path) -> list[str]:
    """The ``legato map`` command of the job (with its progress bar)."""
    return [*legato_command(), "map", f"{PIPELINE}:generate", str(data),
            "-o", str(out_dir / "results.jsonl"), "--store", str(store_of(out_dir))]


def run_map(data: Path, out_dir: Path) -> tuple[int, float]:
    """Run ``legato map`` over the prompts; returns its exit status and wall time."""
    command = map_command(data, out_dir)
    print("$ legato", " ".join(command[command.index("map"):]), flush=True)
    started = time.perf_counter()
    status = subprocess.run(command, check=False).returncode
    return status, time.perf_counter() - started


def legato_json(*arguments: str) -> list[Any]:
    """What a ``legato ... --json`` command prints, parsed: one value per line."""
    found = subprocess.run([*legato_command(), *arguments, "--json"], capture_output=True,
                           text=True, check=True)
    return [json.loads(line) for line in found.stdout.splitlines() if line.strip()]


def latest_run(out_dir: Path) -> dict[str, Any]:
    """``legato show --json`` of the newest run in the job's store."""
    store = str(store_of(out_dir))
    newest = legato_json("runs", "--limit", "1", "--store", store)[0]
    return dict(legato_json("show", newest["id"], "--store", store)[0])


def show(figures: dict[str, Any]) -> None:
    """Print the summary: the scores, then latency and cache hits per stage."""
    print()
    print(f"{figures['items']}/{figures['prompts']} prompts in {figures['seconds']:.1f} s "
          f"({figures['items_per_s']} items/s), run {figures['run']}")
    alone = ", ".join(f"{name} alone {score:.4f}" for name, score in
                      figures["generators"].items())
    print(f"best score mean {figures['best_score_mean']:.4f} (combined, refined); {alone}")
    print(f"accepted {figures['accept_rate']:.1%}, refinement rounds {figures['rounds_mean']:.2f}"
          f" on average, {figures['improved_rate']:.1%} of prompts improved by refining")
    print(f"cache hits {figures['cache_hits']} of {figures['calls']} node calls")
    print(f"{'stage':<22}{'calls':>8}{'cached':>8}{'p50 ms':>9}{'max ms':>9}")
    for name, row in figures["latency"].items():
        print(f"{name:<22}{row['calls']:>8}{row['cached']:>8}{row['p50_ms']:>9.2f}"
              f"{row['max_ms']:>9.1f}")


def main(argv: list[str] | None = None) -> int:
    """Write the prompts, run the pipeline over them, summarise and draw."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prompts", type=int, default=2000, help="how many (default: 2000)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR,
                        help="prompts, results, store, summary, picture (default: %(default)s)")
    args = parser.parse_args(argv)
    out_dir = args.out_dir.resolve()
    data = prompts.write(out_dir / "prompts.jsonl", args.prompts)

    status, seconds = run_map(data, out_dir)
    results = out_dir / "results.jsonl"
    if status != 0 or not results.exists():
        print(f"legato map exited with status {status}", file=sys.stderr)
        return status or 1
    outcomes = summary.read_results(results)
    figures = summary.summarise(outcomes, latest_run(out_dir), prompts=args.prompts,
                                seconds=seconds)
    figures["picture"] = str(summary.draw(outcomes, out_dir / "grid.png"))
    (out_dir / "summary.json").write_text(json.dumps(figures, indent=2) + "\n")
    show(figures)
    print(f"picture: {figures['picture']}; figures: {out_dir / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
