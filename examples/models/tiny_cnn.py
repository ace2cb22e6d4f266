"""A model given as a Python function (model.module = "models/tiny_cnn.py:build").

hwprune calls ``build(shape, n_classes)`` with one sample's natural shape, e.g. (1, 8, 8) for
digits, and trains what it returns. The network takes the data FLAT, (N, C*H*W), like every
hwprune model, so it starts by unflattening. Keep the quantizers power-of-two (Brevitas'
*FixedPoint quantizers) with a constant input scale, so the compiled hardware is bit-exact.
"""

from collections import OrderedDict

from brevitas.core.scaling import ScalingImplType
from brevitas.inject.enum import FloatToIntImplType
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant.scaled_int import Int32Bias
from torch import nn

FLOOR = FloatToIntImplType.FLOOR
# Inputs in [0, 1] on the grid 2**-8 (constant scale), truncated like the hardware does.
INPUT = Uint8ActPerTensorFixedPoint.let(
    scaling_impl_type=ScalingImplType.CONST, max_val=1.0, float_to_int_impl_type=FLOOR
)
WEIGHT = Int8WeightPerTensorFixedPoint.let(bit_width=4)
ACT = Uint8ActPerTensorFixedPoint.let(bit_width=4, float_to_int_impl_type=FLOOR)


def build(shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
    """conv 3x3 (4 filters) -> ReLU -> 2x2 max pool -> linear."""
    c, h, w = shape
    return nn.Sequential(
        OrderedDict(
            unflatten=nn.Unflatten(1, tuple(shape)),
            input_quant=QuantIdentity(act_quant=INPUT, return_quant_tensor=True),
            conv0=QuantConv2d(c, 4, 3, padding=1, weight_quant=WEIGHT, bias_quant=Int32Bias),
            relu0=QuantReLU(act_quant=ACT, return_quant_tensor=True),
            maxpool0=nn.MaxPool2d(2),
            flatten0=nn.Flatten(),
            linear0=QuantLinear(
                4 * (h // 2) * (w // 2), n_classes, weight_quant=WEIGHT, bias_quant=Int32Bias
            ),
        )
    )
