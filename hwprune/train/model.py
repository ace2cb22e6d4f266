"""The Brevitas MLP of the default job: fixed-point (power-of-two) quantizers throughout.

- input: unsigned ``input_bits`` fixed point (the data are in [0, 1]);
- weights: signed ``weight_bits`` fixed point, per tensor, narrow range. Weight rounding stays
  Brevitas' default (round half to even): a weight quantizer set to FLOOR is exported to
  QONNX as ROUND by brevitas 0.13.4 (measured here), so Brevitas and QONNX would disagree.
  Weights are constants, so their rounding never affects hardware exactness;
- biases: 32-bit integers on the accumulator scale (input scale x weight scale);
- activations: QuantReLU, unsigned ``act_bits`` fixed point, FLOOR (or half-even) rounding.
"""

from __future__ import annotations

import torch
from brevitas.inject.enum import FloatToIntImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant.scaled_int import Int32Bias

from hwprune.config import ModelConfig

_ROUNDING = {"floor": FloatToIntImplType.FLOOR, "half_even": FloatToIntImplType.ROUND}


def _act_quant(bits: int, rounding: str, max_val: float):
    return type(
        f"Uint{bits}Act",
        (Uint8ActPerTensorFixedPoint,),
        {"bit_width": bits, "float_to_int_impl_type": _ROUNDING[rounding], "max_val": max_val},
    )


def _weight_quant(bits: int):
    return type(f"Int{bits}Weight", (Int8WeightPerTensorFixedPoint,), {"bit_width": bits})


def build_mlp(cfg: ModelConfig, n_in: int, n_out: int) -> torch.nn.Sequential:
    """Input quantizer, then QuantLinear + QuantReLU per hidden layer, then a QuantLinear."""
    wq = _weight_quant(cfg.weight_bits)
    layers: list[torch.nn.Module] = [
        QuantIdentity(act_quant=_act_quant(cfg.input_bits, "floor", 1.0), return_quant_tensor=True)
    ]
    sizes = [n_in, *cfg.hidden]
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers.append(QuantLinear(a, b, bias=True, weight_quant=wq, bias_quant=Int32Bias))
        layers.append(
            QuantReLU(
                act_quant=_act_quant(cfg.act_bits, cfg.act_rounding, 4.0), return_quant_tensor=True
            )
        )
    layers.append(QuantLinear(sizes[-1], n_out, bias=True, weight_quant=wq, bias_quant=Int32Bias))
    return torch.nn.Sequential(*layers)


def prunable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The weight tensors pruning acts on, by module name."""
    return {n: m.weight for n, m in model.named_modules() if isinstance(m, QuantLinear)}


def forward_numpy(model: torch.nn.Module, x) -> torch.Tensor:
    """Brevitas forward in eval mode on a float numpy batch; returns float64 numpy outputs."""
    import numpy as np

    model.eval()
    with torch.no_grad():
        y = model(torch.as_tensor(np.asarray(x, dtype=np.float32)))
    y = getattr(y, "value", y)
    return y.numpy().astype(np.float64)
