"""Quantization-aware training, then pruning: the schedule says how much and when
(prune/schedules.py), the criterion how masks are computed (prune/criteria.py), the method
what happens around them (METHODS below), the teacher whether fine-tuning distils (TEACHERS).

Order: dense QAT for ``train.epochs`` (or, with ``init``, an earlier run's model.pt loaded
instead: transfer); then the method fine-tunes the pruned network. Masks live apart from the
weights and are multiplied into them after every optimizer step; at the end they are squashed
into exact zeros and BatchNorm is folded, ready for export.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hwprune.config import Config, check_prune_layers
from hwprune.errors import HwpruneError
from hwprune.prune.criteria import CRITERIA, MaskContext
from hwprune.prune.masks import apply_masks, mask_sparsity, total_sparsity
from hwprune.prune.schedules import SCHEDULES, STEP_SCHEDULES, Plan, check_steps
from hwprune.train.data import Split, load_dataset
from hwprune.train.model import (
    build_model,
    fold_batchnorm,
    forward_numpy,
    prunable,
    unit_activations,
)

# Dynamic network surgery: half-width of the hysteresis band, in sparsity. Between the
# criterion's masks at target - band and target + band a weight keeps its previous state,
# so a pruned weight whose dense value grows past the upper threshold is spliced back.
DNS_BAND = 0.05
# mrmr estimates mutual information on at most this many training samples (k-NN cost).
MRMR_SAMPLES = 1000


@dataclass(frozen=True)
class TrainResult:
    """The trained, pruned model (masks squashed, BatchNorm folded) and what it scored.

    ``sparsity``: per pruned layer, the fraction of weights its final mask zeroes (quantizing
    may round further weights to zero in the exported integers). ``history``: one dict per
    epoch and per mask update (phase, epoch, step, target, val_accuracy, ...).
    ``init_accuracy``: with ``train(..., init=...)``, the loaded checkpoint's test accuracy
    before fine-tuning (``dense_accuracy`` is then the same figure); None otherwise."""

    model: torch.nn.Module
    split: Split
    dense_accuracy: float
    pruned_accuracy: float
    masks: dict[str, torch.Tensor]
    sparsity: dict[str, float]
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    init_accuracy: float | None = None


def accuracy(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the model (Brevitas forward, eval mode)."""
    return float((forward_numpy(model, x).argmax(1) == y).mean())


@dataclass
class _Masking:
    """What the training loop applies after each optimizer step. ``dense``: dynamic network
    surgery's dense weights, which the optimizer updates while the model holds masked ones."""

    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    dense: dict[str, torch.Tensor] | None = None


@dataclass
class _Job:
    """One training run's fixed context and its growing history."""

    cfg: Config
    split: Split
    names: tuple[str, ...]  # the layers being pruned, in forward order
    output_layer: str
    progress: bool
    gen: torch.Generator  # batch order
    mask_gen: torch.Generator  # criteria's random choices
    history: list[dict] = field(default_factory=list)
    dense_val: float = 0.0
    rewind_state: dict | None = None
    # train --init with prune.init_masks = keep: the checkpoint's nonzeros per pruned layer;
    # every mask is ANDed with it, so the checkpoint's zeros stay zero.
    keep: dict[str, torch.Tensor] | None = None

    @property
    def peak(self) -> float:
        """The highest final target of a pruned layer: the schedule's curve is planned to it,
        and each layer follows that curve scaled to its own target (prune.layer_sparsity)."""
        p = self.cfg.prune
        return max((p.target(n) for n in self.names), default=0.0)

    def layer_targets(self, target: float) -> dict[str, float]:
        """Each pruned layer's sparsity when the schedule's curve stands at ``target``."""
        p, peak = self.cfg.prune, self.peak
        if not p.layer_sparsity:
            return dict.fromkeys(self.names, target)
        return {n: target * p.target(n) / peak if peak else 0.0 for n in self.names}

    def plan(self) -> Plan:
        """The schedule's plan over the fine-tuning, planned to the peak target."""
        p = self.cfg.prune
        if p.layer_sparsity:
            p = replace(p, sparsity=self.peak, initial_sparsity=min(p.initial_sparsity, self.peak))
        return SCHEDULES[p.schedule](p, p.finetune_epochs * self.steps_per_epoch)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.split.x_train) / self.cfg.train.batch_size)

    def val(self, model: torch.nn.Module) -> float:
        return accuracy(model, self.split.x_val, self.split.y_val)

    def log(self, model: torch.nn.Module, phase: str, **kw) -> float:
        acc = self.val(model)
        self.history.append({"phase": phase, **kw, "val_accuracy": acc})
        return acc


# A hook runs before each optimizer step (and once after the last) with the step count;
# returning False ends the fit there.
Hook = Callable[[int], bool]


def _logits(out) -> torch.Tensor:
    return getattr(out, "value", out)  # Brevitas may return a QuantTensor


def _loss(
    out: torch.Tensor, y: torch.Tensor, teacher_out: torch.Tensor | None, cfg: Config
) -> torch.Tensor:
    """Cross-entropy, or Hinton et al. 2015 distillation when a teacher is given:
    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE, softmax at temperature T
    (T^2 keeps the soft-target gradients on the scale of the hard ones)."""
    ce = F.cross_entropy(out, y)
    if teacher_out is None:
        return ce
    d = cfg.distill
    t = d.temperature
    kd = F.kl_div(
        F.log_softmax(out / t, dim=1),
        F.log_softmax(teacher_out / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return d.alpha * t * t * kd + (1.0 - d.alpha) * ce


def _fit(
    job: _Job,
    model: torch.nn.Module,
    epochs: int,
    phase: str,
    *,
    masking: _Masking | None = None,
    teacher: torch.nn.Module | None = None,
    hook: Hook | None = None,
    target: Callable[[int], float] = lambda step: 0.0,
) -> None:
    """Adam with a cosine learning-rate decay over ``epochs``; masks applied after every
    step; ``hook(step)`` before every step and after the last (it may stop the fit)."""
    cfg = job.cfg
    x, y = torch.as_tensor(job.split.x_train), torch.as_tensor(job.split.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    lr_decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    weights = prunable(model)
    step = 0
    bar = tqdm(range(epochs), desc=phase, unit="epoch", disable=not job.progress, leave=True)
    for epoch in bar:
        perm = torch.randperm(len(x), generator=job.gen)
        for i in range(0, len(x), cfg.train.batch_size):
            if hook is not None and not hook(step):
                return
            model.train()  # a hook may have evaluated the model
            idx = perm[i : i + cfg.train.batch_size]
            opt.zero_grad()
            out = _logits(model(x[idx]))
            t_out = None
            if teacher is not None:
                with torch.no_grad():
                    t_out = _logits(teacher(x[idx]))
            loss = _loss(out, y[idx], t_out, cfg)
            loss.backward()
            with torch.no_grad():
                surgery = masking is not None and masking.dense is not None
                if surgery:
                    # DNS: the gradient was taken on the masked network; it updates the
                    # dense weights (Guo et al. 2016, eq. 3), which are then masked again.
                    grads = {n: weights[n].weight.grad.clone() for n in masking.dense}
                    for n, w in masking.dense.items():
                        weights[n].weight.copy_(w)
                opt.step()
                if surgery:
                    lr = opt.param_groups[0]["lr"]
                    for n, w in masking.dense.items():
                        # Masked weights take the paper's plain gradient step, W -= lr * dL/dW
                        # (Guo et al. use SGD for every weight). Adam's per-weight
                        # normalisation would move every masked weight by about lr whatever
                        # its gradient and splice back weights that do not matter: on digits
                        # at 90 %, DNS fell to 77.8 % that way, 96.0 % with this step
                        # (standard one-shot: 94.9 %; measured here).
                        off = masking.masks[n] == 0
                        delta = lr * grads[n]
                        w.copy_(torch.where(off, w - delta, weights[n].weight))
            if masking is not None:
                apply_masks({n: m.weight for n, m in weights.items()}, masking.masks)
            step += 1
        lr_decay.step()
        acc = job.log(model, phase, epoch=epoch + 1, step=step, target=target(step))
        bar.set_postfix(loss=f"{float(loss):.3f}", val=f"{acc:.3f}")
    if hook is not None:
        hook(step)


def _weights(model: torch.nn.Module, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    layers = prunable(model)
    return {n: layers[n].weight.detach() for n in names}


def _context(job: _Job, model: torch.nn.Module) -> MaskContext:
    """The criterion's context; mrmr reads unit activations of the current model on a seeded
    subset of the training set."""
    x, y = job.split.x_train, job.split.y_train
    if len(x) > MRMR_SAMPLES:
        pick = np.random.default_rng(job.cfg.train.seed).choice(len(x), MRMR_SAMPLES, False)
        x, y = x[np.sort(pick)], y[np.sort(pick)]

    def activations(names: tuple[str, ...]):
        return unit_activations(model, x, list(names)), y

    return MaskContext(job.output_layer, job.mask_gen, activations)


def _masks_at(job: _Job, model: torch.nn.Module, target: float, weights=None) -> dict:
    """The criterion's masks with the schedule's curve at ``target``: one call for all layers,
    or with per-layer targets one call per group of layers that share a target."""
    crit = CRITERIA[job.cfg.prune.criterion]
    weights = weights or _weights(model, job.names)
    groups: dict[float, dict] = {}
    for n, t in job.layer_targets(target).items():
        groups.setdefault(t, {})[n] = weights[n]
    masks = {}
    for t, ws in groups.items():
        masks.update(crit(ws, t, _context(job, model)))
    if job.keep is not None:
        return {n: masks[n] * job.keep[n] for n in weights}
    return {n: masks[n] for n in weights}


def _snapshot(model: torch.nn.Module, masking: _Masking) -> tuple:
    dense = None if masking.dense is None else {n: w.clone() for n, w in masking.dense.items()}
    return (
        copy.deepcopy(model.state_dict()),
        {n: m.clone() for n, m in masking.masks.items()},
        dense,
    )


def _restore(model: torch.nn.Module, masking: _Masking, snap: tuple) -> None:
    model.load_state_dict(snap[0])
    masking.masks = {n: m.clone() for n, m in snap[1].items()}
    masking.dense = None if snap[2] is None else {n: w.clone() for n, w in snap[2].items()}


def _initial_masks(job: _Job, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """All ones, or the kept checkpoint's nonzeros (train --init, init_masks = keep)."""
    if job.keep is not None:
        return {n: m.clone() for n, m in job.keep.items()}
    return {n: torch.ones_like(w) for n, w in _weights(model, job.names).items()}


def _guard_fails(job: _Job, model: torch.nn.Module, phase: str, step: int) -> bool:
    """The iterative schedule's guard: validation accuracy more than prune.tolerance below
    the dense model's."""
    acc = job.val(model)
    failed = acc < job.dense_val - job.cfg.prune.tolerance
    job.history.append(
        {"phase": phase, "event": "guard", "step": step, "val_accuracy": acc, "passed": not failed}
    )
    return failed


def _finetune(job: _Job, model, teacher, plan: Plan, splice: bool) -> dict[str, torch.Tensor]:
    """Fine-tune along the plan. ``splice`` = dynamic network surgery (Guo, Yao & Chen 2016):
    dense weights keep being updated by gradients of the masked network, and masks are
    recomputed every prune.frequency steps from begin_step to end_step with a hysteresis band
    (DNS_BAND), so pruned weights can come back; the update at end_step hits the target
    exactly and fixes the mask. Without ``splice``, masks change only at the plan's updates."""
    p = job.cfg.prune
    masking = _Masking(_initial_masks(job, model))
    snap = _snapshot(model, masking)
    steps = {t for t, _ in plan.updates}
    # DNS recomputes masks on its own cadence too; the target is whatever the schedule says
    # then, so the schedule's curve (one-shot, agp, ...) still decides how much is pruned.
    if splice:
        masking.dense = {n: w.clone() for n, w in _weights(model, job.names).items()}
        steps |= set(range(p.begin_step, p.end_step + 1, p.frequency)) | {p.end_step}
    phase = "fine-tune"

    def hook(step: int) -> bool:
        nonlocal snap
        # The guard looks at the round just finished, before the next round prunes more.
        if step in plan.guard_steps:
            if _guard_fails(job, model, phase, step):
                _restore(model, masking, snap)
                job.history[-1]["rolled_back"] = True
                return False
            snap = _snapshot(model, masking)
        if step not in steps:
            return True
        target = plan.target_at(step)
        layers = prunable(model)
        if masking.dense is not None:
            old = masking.masks
            new = _masks_at(job, model, target, masking.dense)
            if step < p.end_step and 0 < target:
                lo = _masks_at(job, model, max(target - DNS_BAND, target / 2), masking.dense)
                hi = _masks_at(job, model, min(target + DNS_BAND, (1 + target) / 2), masking.dense)
                # kept above the band, pruned below it, unchanged inside it
                new = {n: torch.maximum(hi[n], old[n] * lo[n]) for n in new}
            spliced = sum(int(((old[n] == 0) & (new[n] == 1)).sum()) for n in new)
            masking.masks = new
            with torch.no_grad():
                for n, w in masking.dense.items():
                    layers[n].weight.copy_(w * new[n])
            extra = {"spliced": spliced}
            if step >= p.end_step:
                masking.dense = None  # surgery is over: the mask stays fixed from here
        else:
            masking.masks = _masks_at(job, model, target)
            apply_masks({n: layers[n].weight for n in job.names}, masking.masks)
            extra = {}
        job.log(
            model,
            phase,
            event="mask",
            step=step,
            target=target,
            sparsity=total_sparsity(masking.masks),
            **extra,
        )
        return True

    _fit(
        job,
        model,
        p.finetune_epochs,
        phase,
        masking=masking,
        teacher=teacher,
        hook=hook,
        target=plan.target_at,
    )
    return masking.masks


def _standard(job: _Job, model, teacher) -> dict[str, torch.Tensor]:
    """Prune along the schedule while fine-tuning; pruned weights stay zero."""
    return _finetune(job, model, teacher, job.plan(), splice=False)


def _dns(job: _Job, model, teacher) -> dict[str, torch.Tensor]:
    """Dynamic network surgery: pruning and splicing, target sparsity from the schedule."""
    return _finetune(job, model, teacher, job.plan(), splice=True)


def _lottery_ticket(job: _Job, model, teacher) -> dict[str, torch.Tensor]:
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020,
    "Linear mode connectivity and the lottery ticket hypothesis"): each round prunes the
    trained network with the criterion, rewinds the surviving weights (and every other
    parameter) to the dense run's epoch prune.rewind_epoch (with ``init``: to the loaded
    checkpoint), and retrains finetune_epochs.
    one-shot = one round; iterative = prune.iterations rounds at a geometric rate, round r of n
    reaching 1 - (1 - s)^(r/n), so the last reaches the target s; the guard then applies."""
    p = job.cfg.prune
    rounds = 1 if p.schedule == "one-shot" else p.iterations
    masking = _Masking(_initial_masks(job, model))
    snap = _snapshot(model, masking)
    for r in range(1, rounds + 1):
        target = 1.0 - (1.0 - job.peak) ** (r / rounds)
        masking.masks = _masks_at(job, model, target)
        model.load_state_dict(job.rewind_state)
        layers = prunable(model)
        apply_masks({n: layers[n].weight for n in job.names}, masking.masks)
        phase = f"round {r}/{rounds}"
        sparsity = total_sparsity(masking.masks)
        job.log(model, phase, event="mask", step=0, target=target, sparsity=sparsity)
        _fit(
            job,
            model,
            p.finetune_epochs,
            phase,
            masking=masking,
            teacher=teacher,
            target=lambda step, t=target: t,
        )
        if rounds > 1:
            if _guard_fails(job, model, phase, p.finetune_epochs * job.steps_per_epoch):
                _restore(model, masking, snap)
                job.history[-1]["rolled_back"] = True
                break
            snap = _snapshot(model, masking)
    return masking.masks


# Methods by config name (config.PRUNE_METHODS lists the same names):
# fn(job, dense-trained model, teacher or None) -> final masks; the model is fine-tuned in place.
METHODS: dict[str, Callable[[_Job, torch.nn.Module, torch.nn.Module | None], dict]] = {
    "standard": _standard,
    "lottery-ticket": _lottery_ticket,
    "dns": _dns,
}


def _frozen(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for q in model.parameters():
        q.requires_grad_(False)
    return model


def _no_teacher(job: _Job, dense: torch.nn.Module) -> None:
    return None


def _dense_teacher(job: _Job, dense: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of the dense QAT model, taken before pruning."""
    return _frozen(copy.deepcopy(dense))


def _larger_teacher(job: _Job, dense: torch.nn.Module) -> torch.nn.Module:
    """A float model distill.width_factor times wider, trained for train.epochs first."""
    cfg = job.cfg
    teacher = build_model(
        cfg.model,
        job.split.shape,
        job.split.n_classes,
        quantized=False,
        width_factor=cfg.distill.width_factor,
    )
    _fit(job, teacher, cfg.train.epochs, "teacher (float, wider)")
    return _frozen(teacher)


# Teachers by config name (config.TEACHERS lists the same names).
TEACHERS: dict[str, Callable[[_Job, torch.nn.Module], torch.nn.Module | None]] = {
    "none": _no_teacher,
    "dense": _dense_teacher,
    "larger": _larger_teacher,
}


def _check(cfg: Config, model: torch.nn.Module, job: _Job) -> None:
    """What the config alone could not check: layer names and weight bit widths of the built
    model (a model.module may define anything), and step counts against the data."""
    p = cfg.prune
    layers = prunable(model)
    check_prune_layers(p, list(layers))
    for n in job.names:
        wq = getattr(layers[n], "weight_quant", None)
        bits = wq.bit_width() if wq is not None and wq.is_quant_enabled else None
        if p.target(n) > 0 and bits is not None and int(bits) == 1:
            raise HwpruneError(
                f"prune.layers: layer {n!r} has 1-bit (bipolar) weights, which cannot be zero; "
                "leave it out of prune.layers or give it 2 or more weight bits"
            )
    uses_steps = p.schedule in STEP_SCHEDULES or p.method == "dns"
    check_steps(p, p.finetune_epochs * job.steps_per_epoch, uses_steps)


@dataclass(frozen=True)
class DenseStart:
    """Where every pruning run of one config starts: the dense QAT model after train.epochs
    (weights, lottery-ticket rewind point, accuracies, history) and the batch-order generator's
    state. A sweep over criteria and schedules trains it once (``train_dense``) and passes it
    to ``train``; the result is the same as training it again."""

    state: dict
    rewind_state: dict | None
    dense_accuracy: float
    dense_val: float
    gen_state: torch.Tensor
    history: tuple[dict, ...]


@contextlib.contextmanager
def _threads(n: int):
    """Run with n torch threads, then restore. These networks are small: on 2 cores a second
    thread made training 10-15x slower when anything else was running (measured here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _setup(cfg: Config, progress: bool) -> tuple[_Job, torch.nn.Module]:
    torch.manual_seed(cfg.train.seed)
    split = load_dataset(cfg.data)
    if cfg.data.keep < 1:
        from hwprune.train.data_prune import prune_data

        split = prune_data(split, cfg, progress)
    model = build_model(cfg.model, split.shape, split.n_classes)
    layers = prunable(model)
    names = tuple(n for n in layers if not cfg.prune.layers or n in cfg.prune.layers)
    job = _Job(
        cfg,
        split,
        names,
        output_layer=list(layers)[-1],
        progress=progress,
        gen=torch.Generator().manual_seed(cfg.train.seed),
        mask_gen=torch.Generator().manual_seed(cfg.train.seed + 1),
    )
    _check(cfg, model, job)
    return job, model


def _dense_phase(job: _Job, model: torch.nn.Module) -> DenseStart:
    cfg = job.cfg
    rewind_step = cfg.prune.rewind_epoch * job.steps_per_epoch

    def keep_rewind_point(step: int) -> bool:
        # Kept whatever the method, so one dense start serves lottery-ticket runs too.
        if step == rewind_step:
            job.rewind_state = copy.deepcopy(model.state_dict())
        return True

    _fit(job, model, cfg.train.epochs, "train (dense QAT)", hook=keep_rewind_point)
    return DenseStart(
        copy.deepcopy(model.state_dict()),
        job.rewind_state,
        accuracy(model, job.split.x_test, job.split.y_test),
        job.val(model),
        job.gen.get_state(),
        tuple(job.history),
    )


def _folded_state(cfg: Config, job: _Job, state: dict) -> dict:
    """A dense-phase checkpoint (with BatchNorm) as the state of the folded model."""
    model = build_model(cfg.model, job.split.shape, job.split.n_classes)
    model.load_state_dict(state)
    return fold_batchnorm(model).state_dict()


def train_dense(cfg: Config, progress: bool = True) -> DenseStart:
    """Only the dense QAT phase of ``train(cfg)``, to share between pruning runs."""
    with _threads(1):
        job, model = _setup(cfg, progress)
        return _dense_phase(job, model)


def _read_init(init: Path) -> dict:
    """The state dict saved at ``init`` (an earlier run's model.pt), or a one-line error."""
    fix = "give the model.pt an earlier 'hwprune train' wrote"
    if not init.is_file():
        raise HwpruneError(f"--init {init}: no such file; {fix}")
    try:
        state = torch.load(init, weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle, zip and torch errors alike
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HwpruneError(f"--init {init}: not a PyTorch state dict ({first}); {fix}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise HwpruneError(f"--init {init}: holds no state dict of tensors; {fix}")
    return state


def _init_model(cfg: Config, split: Split, init: Path, state: dict) -> torch.nn.Module:
    """The config's model with BatchNorm folded (as model.pt was saved) holding ``state``;
    a parameter of another shape is refused by name, both shapes given."""
    model = build_model(cfg.model, split.shape, split.n_classes, fold_bn=True)
    fix = (
        "use a config with the checkpoint's model (layer sizes) and number of classes "
        "(data.classes), or train without --init"
    )
    # Only parameters both hold: Brevitas adds its activation scales (runtime statistics)
    # to a fresh model's state when it loads them, so load_state_dict judges the key sets.
    for name, want in model.state_dict().items():
        got = state.get(name)
        if got is not None and got.shape != want.shape:
            raise HwpruneError(
                f"--init {init}: parameter {name!r} has shape {tuple(got.shape)} there, "
                f"{tuple(want.shape)} in the config's model; {fix}"
            )
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = " ".join(str(e).split())
        raise HwpruneError(
            f"--init {init}: does not fit the config's model ({first}); {fix}"
        ) from None
    return model


def check_init(cfg: Config, init: Path) -> None:
    """Raise HwpruneError unless ``init`` is a state dict that loads into the config's model:
    what ``train(cfg, init=init)`` checks first, without training (for callers that want the
    error before they start anything)."""
    state = _read_init(Path(init))
    _init_model(cfg, load_dataset(cfg.data), Path(init), state)


def _start_from(job: _Job, init: Path, state: dict) -> tuple[torch.nn.Module, float]:
    """Transfer: the checkpoint as the start of fine-tuning (folded, as trained), its test
    accuracy, and the masks prune.init_masks asks for. The checkpoint is also the guard's
    reference and lottery-ticket's rewind point."""
    model = _init_model(job.cfg, job.split, init, state)
    acc = accuracy(model, job.split.x_test, job.split.y_test)
    job.dense_val = job.log(model, "init", test_accuracy=acc)
    job.rewind_state = copy.deepcopy(model.state_dict())
    if job.cfg.prune.init_masks == "keep":
        job.keep = {n: (w != 0).to(w.dtype) for n, w in _weights(model, job.names).items()}
    return model, acc


def train(
    cfg: Config,
    progress: bool = True,
    dense: DenseStart | None = None,
    init: Path | None = None,
) -> TrainResult:
    """Dense QAT for train.epochs (or start from ``dense``, made by ``train_dense`` with the
    same data, model and train sections), then prune with the configured criterion, schedule,
    method and teacher; squash the masks, fold BatchNorm and score the final model on the test
    set.

    ``init``: a model.pt of an earlier run (BatchNorm folded, masks squashed) to transfer
    from instead of dense QAT: loaded into the config's model, scored (``init_accuracy``),
    then pruned and fine-tuned on the config's data. prune.init_masks = keep holds its zeros
    at zero; reopen lets them regrow."""
    if init is not None:
        if dense is not None:
            raise HwpruneError("train: give a dense start or an init checkpoint, not both")
        return _transfer(cfg, progress, Path(init))
    t0 = time.perf_counter()
    with _threads(1):
        job, model = _setup(cfg, progress)
        if dense is None:
            dense = _dense_phase(job, model)
        # Loading a state dict ends Brevitas' activation statistics collection (its runtime-
        # stats scales become plain parameters); a model that just kept training would still
        # be collecting during fine-tuning. Load it in both cases, so a run from a shared
        # dense start is the same run.
        model.load_state_dict(dense.state)
        job.gen.set_state(dense.gen_state)
        job.rewind_state = dense.rewind_state
        job.history = list(dense.history)
        job.dense_val = dense.dense_val
        torch.manual_seed(cfg.train.seed + 2)  # what follows draws the same with or without
        teacher = TEACHERS[cfg.distill.teacher](job, model)
        # Fold BatchNorm now, so that masks are computed on, and fine-tuning recovers from,
        # the folded weights that will be exported: one power-of-two scale per tensor cannot
        # hold BatchNorm's per-channel factors (digits CNN: 98.2 % -> 92.0 % when folded after
        # pruning, 96-98 % after fine-tuning folded weights; measured here).
        model = fold_batchnorm(model)
        if job.rewind_state is not None:
            job.rewind_state = _folded_state(cfg, job, job.rewind_state)

        final, masks, pruned_acc = _prune(job, model, teacher)
    return TrainResult(
        final,
        job.split,
        dense.dense_accuracy,
        pruned_acc,
        masks,
        mask_sparsity(masks),
        job.history,
        time.perf_counter() - t0,
    )


def _prune(job: _Job, model: torch.nn.Module, teacher) -> tuple[torch.nn.Module, dict, float]:
    """The configured method on the folded ``model``; then the masks squashed into exact
    zeros: (final model, masks, test accuracy)."""
    masks = METHODS[job.cfg.prune.method](job, model, teacher)
    layers = prunable(model)
    apply_masks({n: layers[n].weight for n in masks}, masks)  # squash: exact zeros
    final = fold_batchnorm(model)
    folded = prunable(final)
    apply_masks({n: folded[n].weight for n in masks}, masks)  # folding keeps zeros; ensure
    return final, masks, accuracy(final, job.split.x_test, job.split.y_test)


def _transfer(cfg: Config, progress: bool, init: Path) -> TrainResult:
    """``train(cfg, init=...)``: no dense phase; fine-tune from the checkpoint."""
    t0 = time.perf_counter()
    state = _read_init(init)  # before the data loads: a wrong path fails at once
    with _threads(1):
        job, _ = _setup(cfg, progress)
        model, init_acc = _start_from(job, init, state)
        torch.manual_seed(cfg.train.seed + 2)
        teacher = TEACHERS[cfg.distill.teacher](job, model)
        final, masks, pruned_acc = _prune(job, model, teacher)
    return TrainResult(
        final,
        job.split,
        init_acc,
        pruned_acc,
        masks,
        mask_sparsity(masks),
        job.history,
        time.perf_counter() - t0,
        init_accuracy=init_acc,
    )


def train_float(cfg: Config, progress: bool = True) -> float:
    """Test accuracy of the same layers without quantizers, trained for train.epochs: the
    float baseline a quantized, pruned model is compared with."""
    with _threads(1):
        job, _ = _setup(cfg, progress)
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg.model, job.split.shape, job.split.n_classes, quantized=False)
        _fit(job, model, cfg.train.epochs, "train (float)")
        return accuracy(model, job.split.x_test, job.split.y_test)
