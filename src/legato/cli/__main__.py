"""``python -m legato.cli``: the ``legato`` console script."""

from legato.cli import main

main()
