"""B6's pipeline: three nodes in a chain. ``python three_nodes.py`` imports legato, runs it and
exits; ``legato run three_nodes.py:chain --input x=1`` does the same through the CLI."""

import legato as lg


@lg.component(executor="inline")
def step(x: int) -> int:
    return x + 1


@lg.pipeline
def chain(x: int) -> int:
    return step(step(step(x)))


if __name__ == "__main__":
    assert chain.run(x=1) == 4
