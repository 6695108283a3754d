"""A two-step pipeline for the node's KFP test: the first step writes numbers, the second sums them.

No `from __future__ import annotations` here: KFP reads these functions' annotations as types.
"""

from kfp import dsl


def produce(count: int, numbers: dsl.Output[dsl.Dataset]):
    with open(numbers.path, "w") as out:
        out.write("\n".join(str(n) for n in range(1, count + 1)))


def consume(numbers: dsl.Input[dsl.Dataset]) -> int:
    with open(numbers.path) as source:
        return sum(int(line) for line in source)


def two_steps(image: str):
    """The pipeline, its steps run in `image` (which carries kfp: nothing is installed at run time)."""
    component = dsl.component(base_image=image, install_kfp_package=False)
    produce_step, consume_step = component(produce), component(consume)

    @dsl.pipeline(name="node-check")
    def node_check(count: int = 3):
        consume_step(numbers=produce_step(count=count).outputs["numbers"])

    return node_check
