"""Model functions a sweep's points name with ``model.module = "user_models.py:NAME"``.

Tests copy this file next to their sweep file (in ``tmp_path``), so the marker ``dies_once``
leaves stays there. Each function is called as fn(shape, n_classes) on a Dask worker.
"""

import os
from collections import OrderedDict
from math import prod
from pathlib import Path

from brevitas.core.scaling import ScalingImplType
from brevitas.inject.enum import FloatToIntImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant.scaled_int import Int32Bias
from torch import nn

FLOOR = FloatToIntImplType.FLOOR
INPUT = Uint8ActPerTensorFixedPoint.let(
    scaling_impl_type=ScalingImplType.CONST, max_val=1.0, float_to_int_impl_type=FLOOR
)
WEIGHT = Int8WeightPerTensorFixedPoint.let(bit_width=4)
ACT = Uint8ActPerTensorFixedPoint.let(bit_width=4, float_to_int_impl_type=FLOOR)
# Left beside this file by the first call of dies_once.
MARKER = Path(__file__).with_name("dies_once.marker")


def tiny(shape, n_classes):
    """A 64-8-10 quantized MLP."""
    return nn.Sequential(
        OrderedDict(
            input_quant=QuantIdentity(act_quant=INPUT, return_quant_tensor=True),
            linear0=QuantLinear(prod(shape), 8, weight_quant=WEIGHT, bias_quant=Int32Bias),
            relu0=QuantReLU(act_quant=ACT, return_quant_tensor=True),
            linear1=QuantLinear(8, n_classes, weight_quant=WEIGHT, bias_quant=Int32Bias),
        )
    )


def broken(shape, n_classes):
    raise ValueError("this model is broken on purpose")


def dies_once(shape, n_classes):
    """Kill the process it runs in the first time (as a segfault or the OOM killer would),
    then behave as ``tiny``."""
    if not MARKER.exists():
        MARKER.write_text(f"{os.getpid()}\n")
        os._exit(1)
    return tiny(shape, n_classes)
