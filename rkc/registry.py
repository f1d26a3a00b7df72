"""Every dialect and pass rkc knows, plus those contributed by plugins.

A plugin is an installed package that declares an entry point in the group
`rkc.plugins` whose object is an `xdsl.universe.Universe` (its `all_dialects`,
`all_passes` and `all_targets` dictionaries of factories). rkc-opt and the driver load
them at start-up; a plugin may not redefine a name rkc already has.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

from xdsl.ir import Dialect
from xdsl.passes import ModulePass
from xdsl.universe import Universe

from rkc.errors import RkcError

PLUGIN_GROUP = "rkc.plugins"


def _load(module: str, name: str) -> Callable[[], object]:
    def factory():
        return getattr(importlib.import_module(module), name)

    return factory


DIALECTS: dict[str, Callable[[], Dialect]] = {
    "nn": _load("rkc.dialects.nn", "NN"),
    "quant": _load("rkc.dialects.quant", "QUANT"),
    "rknpu": _load("rkc.dialects.rknpu", "RKNPU"),
}

PASSES: dict[str, Callable[[], type[ModulePass]]] = {
    "nn-canonicalize": _load("rkc.passes.nn_canonicalize", "NNCanonicalizePass"),
    "nn-decompose-global-pool": _load("rkc.passes.nn_decompose_global_pool",
                                      "NNDecomposeGlobalPoolPass"),
    "nn-div-to-mul": _load("rkc.passes.nn_div_to_mul", "NNDivToMulPass"),
    "nn-fold-batchnorm": _load("rkc.passes.nn_fold_batchnorm", "NNFoldBatchNormPass"),
    "nn-fuse-activation": _load("rkc.passes.nn_fuse_activation", "NNFuseActivationPass"),
    "nn-gemm-to-conv": _load("rkc.passes.nn_gemm_to_conv", "NNGemmToConvPass"),
    "nn-match-activations": _load("rkc.passes.nn_match_activations", "NNMatchActivationsPass"),
    "nn-quantize": _load("rkc.passes.nn_quantize", "NNQuantizePass"),
    "nn-to-rknpu": _load("rkc.passes.nn_to_rknpu", "NNToRknpuPass"),
    "rknpu-fuse": _load("rkc.passes.rknpu_fuse", "RknpuFusePass"),
    "rknpu-layout": _load("rkc.passes.rknpu_layout", "RknpuLayoutPass"),
    "rknpu-legalize": _load("rkc.passes.rknpu_legalize", "RknpuLegalizePass"),
    "rknpu-plan-memory": _load("rkc.passes.rknpu_plan_memory", "RknpuPlanMemoryPass"),
    "rknpu-tile": _load("rkc.passes.rknpu_tile", "RknpuTilePass"),
}

XDSL_DIALECTS = ("builtin", "func", "arith", "tensor")
XDSL_PASSES = ("canonicalize", "cse", "dce")


def plugin_universes() -> list[tuple[str, Universe]]:
    """(entry point name, Universe) for each installed rkc plugin."""
    found = []
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            universe = ep.load()
        except Exception as e:  # a broken plugin must not take rkc down with a traceback
            raise RkcError(f"plugin '{ep.name}' ({ep.value}) failed to load: {e}") from e
        if not isinstance(universe, Universe):
            raise RkcError(f"plugin '{ep.name}' ({ep.value}) is not an xdsl.universe.Universe")
        found.append((ep.name, universe))
    return found


def all_universe() -> Universe:
    """rkc's own dialects and passes, the xDSL ones rkc uses, and every plugin's."""
    from xdsl.dialects import get_all_dialects
    from xdsl.transforms import get_all_passes

    xdsl_dialects, xdsl_passes = get_all_dialects(), get_all_passes()
    dialects = {n: xdsl_dialects[n] for n in XDSL_DIALECTS} | DIALECTS
    passes = {n: xdsl_passes[n] for n in XDSL_PASSES} | PASSES
    targets: dict = {}
    for plugin, universe in plugin_universes():
        for kind, mine, theirs in (("dialect", dialects, universe.all_dialects),
                                   ("pass", passes, universe.all_passes),
                                   ("target", targets, universe.all_targets)):
            clash = sorted(set(mine) & set(theirs))
            if clash:
                raise RkcError(f"plugin '{plugin}' redefines the {kind} '{clash[0]}'")
            mine.update(theirs)
    return Universe(all_dialects=dialects, all_passes=passes, all_targets=targets)


def make_context():
    """An xDSL context with every dialect rkc and its plugins know, loaded lazily."""
    from xdsl.context import Context

    ctx = Context()
    for name, factory in all_universe().all_dialects.items():
        ctx.register_dialect(name, factory)
    return ctx
