"""The whole `rkc quantize` job on an imported float module.

    nn-canonicalize, nn-match-activations, nn-div-to-mul, nn-fold-batchnorm,
    nn-decompose-global-pool, nn-fuse-activation{kinds=relu,clip}
      -> add_normalization (mean / std become part of the model: it takes raw input)
      -> calibrate (int8 only: `rkc.range` on every float value)
      -> nn-quantize{dtype, method} -> cse, dce

The float rewrites before calibration serve the int8 graph: written-out hard-swish /
hard-sigmoid become one table op each (no float division island), a division by a
constant scalar becomes a multiplication (an int8 op), per-channel affine ops after a
conv / gemm fold into its weights (no op, no rounding), and global pools larger than the
PPU window become cascades of pools (each stage calibrated, so each gets its own
range). They change float results by float32 rounding only (each pass states its
tolerance). Only relu and clip are fused before calibration: they are the activations
an int8 conv / gemm keeps fused; the others stay separate ops so that they get their
own range (and their own table op in int8).

`quantize_model` returns both modules: `float_module` is the prepared (normalised and, for
int8, calibrated) float module the quantized one was made from. They have the same
signature (raw f32 inputs, f32 outputs) and the same `rkc.name`s, so they can be run on
the same inputs and compared output by output or layer by layer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from xdsl.dialects.builtin import ModuleOp
from xdsl.interpreter import Interpreter
from xdsl.passes import PassPipeline

from rkc.errors import RkcError
from rkc.quant.dataset import Preprocess, add_normalization

PREPARE = ("nn-canonicalize,nn-match-activations,nn-div-to-mul,nn-fold-batchnorm,"
           "nn-decompose-global-pool,nn-fuse-activation{kinds=relu,clip}")
CLEANUP = "cse,dce"
DTYPES = ("int8", "fp16")
METHODS = ("channel", "layer")


@dataclass
class QuantizedModel:
    """The result of `quantize_model`.

    `module`: the quantized module. `float_module`: the float module it was made from
    (prepared, normalised, calibrated for int8), with the original weights: the reference
    to compare with. `calibrated_module`: what nn-quantize ran on: `float_module` with
    int8 weights already rounded onto their grid when `weight_rounding` is "gptq" (the
    same module otherwise); `rkc-opt -p nn-quantize` on it reproduces `module`.
    `counts`: ops per precision ("int8", "fp16", "float", as `precision_counts` defines
    them). `seconds`: wall time per stage.
    """

    module: ModuleOp
    float_module: ModuleOp
    calibrated_module: ModuleOp
    dtype: str
    method: str
    algorithm: str | None
    weight_rounding: str
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)


def run_passes(module: ModuleOp, spec: str) -> None:
    """Apply a pass pipeline (rkc-opt syntax) to `module` in place and verify it."""
    from rkc.registry import all_universe, make_context

    PassPipeline.parse_spec(all_universe().all_passes, spec).apply(make_context(), module)
    module.verify()


def prepare_float(module: ModuleOp, preprocess: Preprocess) -> ModuleOp:
    """A copy of `module` after `PREPARE` (canonicalised, activations matched, affine
    ops folded, large global pools decomposed, relu / clip fused), with the input
    normalisation inside: the float module calibration observes."""
    prepared = module.clone()
    run_passes(prepared, PREPARE)
    add_normalization(prepared, preprocess)
    prepared.verify()
    return prepared


def quantize_model(module: ModuleOp, samples: Sequence[Mapping[str, np.ndarray]] | None, *,
                   preprocess: Preprocess, algorithm: str = "minmax", dtype: str = "int8",
                   method: str = "channel", weight_rounding: str = "nearest",
                   show_progress: bool = True, prepared: ModuleOp | None = None,
                   listeners: Sequence[Interpreter.Listener] = ()) -> QuantizedModel:
    """Quantize an imported float module (left untouched). `samples`: raw calibration
    inputs (name -> array), needed for int8, ignored for fp16. `weight_rounding`:
    "nearest", or "gptq" (int8 conv / gemm weights rounded against the calibration
    data, `rkc.quant.weight_rounding`). `prepared`: `prepare_float(module, preprocess)`
    when the caller made it already (e.g. to lint it); it becomes `float_module` and is
    calibrated in place. `listeners`: also see calibration's run over the samples (int8;
    each sample once)."""
    from rkc.passes.nn_quantize import precision_counts
    from rkc.quant.calibrate import calibrate
    from rkc.quant.weight_rounding import WEIGHT_ROUNDINGS, HessianCollector

    if dtype not in DTYPES:
        raise RkcError(f"dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
    if method not in METHODS:
        raise RkcError(f"method must be one of {', '.join(METHODS)}, got '{method}'")
    if weight_rounding not in WEIGHT_ROUNDINGS:
        raise RkcError(f"weight rounding must be one of {', '.join(WEIGHT_ROUNDINGS)}, "
                       f"got '{weight_rounding}'")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    if prepared is None:
        prepared = prepare_float(module, preprocess)
    seconds["prepare"] = time.perf_counter() - start
    calibrated = prepared
    if dtype == "int8":
        if not samples:
            raise RkcError("int8 quantization needs calibration samples (a dataset)")
        start = time.perf_counter()
        # GPTQ's Hessians are summed during calibration's own run over the samples
        hessians = HessianCollector(prepared) if weight_rounding == "gptq" else None
        calibrate(prepared, samples, algorithm, show_progress,
                  [*listeners, *([hessians] if hessians is not None else [])])
        seconds["calibrate"] = time.perf_counter() - start
        if hessians is not None:
            start = time.perf_counter()
            calibrated = prepared.clone()
            hessians.round_weights(calibrated, method == "channel")
            seconds["weight rounding"] = time.perf_counter() - start
    start = time.perf_counter()
    quantized = calibrated.clone()
    run_passes(quantized, f"nn-quantize{{dtype={dtype} method={method}}},{CLEANUP}")
    seconds["quantize"] = time.perf_counter() - start
    return QuantizedModel(quantized, prepared, calibrated, dtype, method,
                          algorithm if dtype == "int8" else None,
                          weight_rounding if dtype == "int8" else "nearest",
                          precision_counts(quantized), seconds)
