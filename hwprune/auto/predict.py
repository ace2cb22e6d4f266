"""The estimator's figures of an allocation without training or exporting again.

Pruning changes a network's weights, not its graph: the QONNX export of a pruned network is
the dense network's export with zeros in its weight tensors (the float weights ahead of each
weight Quant node). ``Predictor`` exports the dense network once, finds each prunable layer's
weight initializer in it (the tensor equal to the layer's weights), and for an allocation
computes the criterion's masks on the dense weights (as a trial's one-shot pruning does),
writes the masked weights into a copy of that export and sizes it with the estimator, the
same graph choices ``hwprune compile`` makes. Interactions between layers are therefore
exact: an output column pruned away leaves the unit feeding it dead, and the optimizer drops
its logic. What it cannot know is how fine-tuning moves the surviving weights' values (the
count of nonzeros stays); ``train --fit`` checks the final design with a real export.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hwprune.auto.problem import Allocation
from hwprune.auto.trials import design_entry, figures, load_dense, trial_config
from hwprune.config import Config
from hwprune.errors import HwpruneError


class Predictor:
    """``predictor(alloc) -> figures`` (lut, ff, dsp, bram18, latency_ns) on ``board``;
    results are cached by allocation rounded to 4 decimals."""

    def __init__(self, cfg: Config, dense_file: Path, board: str, names: tuple[str, ...]):
        import numpy as np
        import onnx
        from onnx import numpy_helper

        from hwprune.export.qonnx import export_model
        from hwprune.train.loop import _setup
        from hwprune.train.model import fold_batchnorm, prunable

        self.cfg, self.board, self.names = cfg, board, names
        self._tmp = tempfile.TemporaryDirectory(prefix="hwprune-predict-")
        self._path = Path(self._tmp.name) / "model.onnx"
        # The dense network as a trial starts from it: dense state loaded, BatchNorm folded.
        self._job, model = _setup(trial_config(cfg, tuple((n, 0.0) for n in names), 0), False)
        model.load_state_dict(load_dense(dense_file).state)
        self._model = fold_batchnorm(model)
        export_model(self._model, int(np.prod(self._job.split.shape)), self._path)
        self._template = onnx.load(self._path)
        inits = {i.name: numpy_helper.to_array(i) for i in self._template.graph.initializer}
        layers = prunable(self._model)
        self._init: dict[str, str] = {}
        for n in names:
            w = layers[n].weight.detach().numpy()
            hits = [k for k, a in inits.items() if a.shape == w.shape and np.array_equal(a, w)]
            if len(hits) != 1:
                raise HwpruneError(
                    f"layer {n}: its weights are not one tensor of the exported model "
                    f"({len(hits)} found); --fit needs a model whose weights export as they are"
                )
            self._init[n] = hits[0]
        self._dense_w = {n: inits[k] for n, k in self._init.items()}
        self._cache: dict[tuple, dict[str, float]] = {}
        self.calls = 0  # estimates made (cache misses)

    def masks(self, alloc: Allocation) -> dict:
        """The criterion's masks of ``alloc`` on the dense weights (one-shot, as a trial)."""
        from hwprune.train.loop import _masks_at

        job = self._job
        job.cfg = trial_config(self.cfg, tuple((n, alloc.get(n, 0.0)) for n in self.names), 0)
        job.mask_gen.manual_seed(self.cfg.train.seed + 1)  # as a trial's fresh generator
        return _masks_at(job, self._model, job.peak)

    def __call__(self, alloc: Allocation) -> dict[str, float]:
        import onnx
        from onnx import numpy_helper

        key = tuple(round(float(alloc.get(n, 0.0)), 4) for n in self.names)
        if key in self._cache:
            return self._cache[key]
        masks = self.masks(dict(zip(self.names, key)))
        m = onnx.ModelProto()
        m.CopyFrom(self._template)
        by_init = {self._init[n]: self._dense_w[n] * masks[n].numpy() for n in self.names}
        for i, init in enumerate(m.graph.initializer):
            if init.name in by_init:
                m.graph.initializer[i].CopyFrom(
                    numpy_helper.from_array(by_init[init.name], init.name)
                )
        onnx.save(m, self._path)
        out = figures(design_entry(self._path, self.cfg, self.board))
        self._cache[key] = out
        self.calls += 1
        return out

    def close(self) -> None:
        self._tmp.cleanup()


class Surrogate:
    """A fast stand-in for ``Predictor`` where a search weighs thousands of allocations (the
    RL agent's budget clip): least squares on features that follow how the estimate responds
    to pruning. For layer l with u = 1 - s_l kept: u and u^2 (fewer, and on average larger,
    constant multipliers), u * s_next^k (a unit of l is dead when all k weights reading it in
    the next layer are pruned) and u * s_prev (inputs from dead units). Fitted on ``n``
    seeded allocations sized by the predictor; ``error`` is its largest relative LUT error
    on as many held-out ones."""

    def __init__(self, predictor: Predictor, layers, top: float, n: int = 0, seed: int = 0):
        import numpy as np

        self.layers = tuple(layers)
        self.names = tuple(ly.name for ly in self.layers)
        n = n or 24 + 8 * len(self.layers)
        rng = np.random.default_rng(seed)
        L = len(self.names)
        grid = [np.full(L, v) for v in np.linspace(0.0, top, 6)]
        fit = np.vstack([*grid, rng.uniform(0, top, (n - len(grid), L))])
        held = rng.uniform(0, top, (max(8, n // 3), L))
        ys = [predictor(dict(zip(self.names, row))) for row in fit]
        self.keys = tuple(ys[0])
        x = np.array([self._features(row) for row in fit])
        y = np.array([[v[k] for k in self.keys] for v in ys])
        self.coef = np.linalg.lstsq(x, y, rcond=None)[0]
        got = [self(dict(zip(self.names, row)))["lut"] for row in held]
        want = [predictor(dict(zip(self.names, row)))["lut"] for row in held]
        self.error = max(abs(g - w) / w for g, w in zip(got, want) if w)
        self.samples = len(fit) + len(held)

    def _features(self, s) -> list[float]:
        out = [1.0]
        for i in range(len(self.layers)):
            u = 1.0 - s[i]
            nxt = s[i + 1] ** self.layers[i + 1].fan_out if i + 1 < len(s) else 0.0
            prev = s[i - 1] if i else 0.0
            out += [u, u * u, u * nxt, u * prev]
        return out

    def __call__(self, alloc: Allocation) -> dict[str, float]:
        import numpy as np

        f = np.array(self._features([alloc.get(n, 0.0) for n in self.names]))
        return {k: max(0.0, float(v)) for k, v in zip(self.keys, f @ self.coef)}
