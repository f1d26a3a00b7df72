"""A minimal rkc plugin: the pass `example-strip-names` removes the `rkc.name`
attribute from every op. rkc finds it through the `rkc.plugins` entry point."""

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.universe import Universe


@dataclass(frozen=True)
class StripNamesPass(ModulePass):
    """Establishes: no op carries an `rkc.name` attribute."""

    name = "example-strip-names"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for inner in op.walk():
            inner.attributes.pop("rkc.name", None)


UNIVERSE = Universe(all_passes={"example-strip-names": lambda: StripNamesPass})
