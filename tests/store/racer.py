"""One racer of the resume race (test_claims.py): waits at the barrier, a FIFO that the test
opens and then closes once every racer waits on its own, then runs the legato command line
with the arguments it was given, in this process."""

from __future__ import annotations

import sys

from legato.cli import main

if __name__ == "__main__":
    gate, *arguments = sys.argv[1:]
    with open(gate, "rb") as barrier:
        barrier.read()  # returns when the test closes its end: every racer goes at once
    sys.argv = ["legato", *arguments]
    main()
