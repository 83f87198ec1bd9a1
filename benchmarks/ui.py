"""B12, the web UI's API over a big store, on its own: ``python benchmarks/ui.py [--quick]``.

The family is ``benchmarks/workloads/ui.py`` (add ``"ui": ui.family`` to ``FAMILIES`` in
``run.py`` to run it with the suite). Prints each figure, the ratio's baseline beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import ui  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    family = ui.family(quick=args.quick)
    sample = family.systems["legato"]()
    for row in family.rows:
        value = sample.values[row.id]
        note = sample.notes.get(row.id, "")
        print(f"{row.id:14} {value:12.3f} {row.metric:6} {row.workload}"
              + (f"  ({note})" if note else ""))


if __name__ == "__main__":
    main()
