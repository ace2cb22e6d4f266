"""hwprune: sparse, quantized PyTorch networks to bit-exact, sized FPGA hardware.

The Python API (see ``hwprune.api`` and the README's Python section)::

    import hwprune
    design = hwprune.compile("model.onnx", "build/m", board="pynq-z2")
    design.predict(x); design.sim(vectors=200); design.estimate("zcu104")
    hwprune.run("config.toml", "build/job")

Names are imported on first use, so ``import hwprune`` stays light.
"""

__version__ = "0.1.0"

# sim, estimate and export are also subpackages, so they are methods of Design (and
# functions of hwprune.api) here; hwprune.train is the train package, which is callable.
_API = ("Design", "RunReport", "STEPS", "TrainReport", "boards", "compile", "load", "run")
__all__ = [*_API, "train", "Config", "HwpruneError", "MismatchError", "load_config"]


def __getattr__(name: str):
    if name == "train":
        import importlib

        return importlib.import_module("hwprune.train")
    if name in _API:
        from hwprune import api

        return getattr(api, name)
    if name in ("Config", "load_config"):
        from hwprune import config

        return getattr(config, name)
    if name in ("HwpruneError", "MismatchError"):
        from hwprune import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'hwprune' has no attribute {name!r}")
