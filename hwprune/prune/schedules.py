"""Pruning schedules: how much is pruned, and when, over the fine-tuning steps.

A schedule turns the [prune] section and the number of fine-tuning optimizer steps into a
``Plan``: the steps at which masks are recomputed and the target sparsity at each, plus the
steps at which the accuracy guard checks the model. Step ``t`` means "after ``t`` optimizer
steps of fine-tuning": an update at step 0 prunes before the first step, one at ``total``
after the last. Computing the masks (prune/criteria.py) and training (train/loop.py) stay
elsewhere; a plan is plain data, so its sparsity curve can be tested without training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwprune.config import PruneConfig
from hwprune.errors import HwpruneError


@dataclass(frozen=True)
class Plan:
    """Mask updates ``(step, target sparsity)`` in step order, and guard steps.

    ``guard_steps``: steps (ends of the iterative schedule's rounds) at which the loop checks
    validation accuracy against the dense model before going on; empty = no guard.
    """

    updates: tuple[tuple[int, float], ...]
    guard_steps: tuple[int, ...] = ()

    def target_at(self, step: int) -> float:
        """The target sparsity in force at ``step`` (0 before the first update)."""
        s = 0.0
        for t, target in self.updates:
            if t > step:
                break
            s = target
        return s

    def update_at(self, step: int) -> float | None:
        """The target of the mask update at ``step`` (the last one listed there), or None when
        the masks stay as they are."""
        found = None
        for t, target in self.updates:
            if t == step:
                found = target
        return found


ScheduleFn = Callable[[PruneConfig, int], Plan]


def one_shot(p: PruneConfig, total_steps: int) -> Plan:
    """Mask once at the target before fine-tuning; the mask stays fixed."""
    return Plan(((0, p.sparsity),))


def iterative(p: PruneConfig, total_steps: int) -> Plan:
    """``p.iterations`` rounds of equal sparsity increase, each followed by an equal share of
    the fine-tuning (finetune_epochs / iterations epochs when it divides); the guard checks at
    the end of every round."""
    n = p.iterations
    # Round starts in steps: on epoch boundaries when iterations divides finetune_epochs.
    starts = [round(r * total_steps / n) for r in range(n)]
    updates = tuple((t, p.sparsity * (r + 1) / n) for r, t in enumerate(starts))
    return Plan(updates, (*starts[1:], total_steps))


def _ramp_steps(p: PruneConfig) -> list[int]:
    """begin_step, then every ``frequency`` steps, and end_step itself even when frequency
    does not divide the range, so that the last update reaches the final target."""
    steps = list(range(p.begin_step, p.end_step + 1, p.frequency))
    if steps[-1] != p.end_step:  # TF-MOT would stop short of the target here
        steps.append(p.end_step)
    return steps


def agp_sparsity(p: PruneConfig, step: int) -> float:
    """Zhu & Gupta 2017 (arXiv:1710.01878), eq. 1:
    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n dt))^3, with t0 = begin_step and
    n dt = end_step - begin_step; s_i before t0 and s_f after the end."""
    frac = min(1.0, max(0.0, (step - p.begin_step) / (p.end_step - p.begin_step)))
    return p.sparsity + (p.initial_sparsity - p.sparsity) * (1.0 - frac) ** 3


def agp(p: PruneConfig, total_steps: int) -> Plan:
    """Automated gradual pruning: the cubic ramp above, masks updated every ``frequency``
    steps from begin_step to end_step, then fine-tuning with the final mask fixed."""
    return Plan(tuple((t, agp_sparsity(p, t)) for t in _ramp_steps(p)))


def constant(p: PruneConfig, total_steps: int) -> Plan:
    """TF-MOT ConstantSparsity: the target re-applied (masks recomputed from the current
    weights) every ``frequency`` steps from begin_step to end_step."""
    return Plan(tuple((t, p.sparsity) for t in _ramp_steps(p)))


def check_steps(p: PruneConfig, total_steps: int, uses_steps: bool) -> None:
    """Before training: a step-based schedule (or dns) must end within the fine-tuning."""
    # end_step == total_steps is allowed: the last update comes after the last step.
    if uses_steps and p.end_step > total_steps:
        raise HwpruneError(
            f"prune.end_step = {p.end_step} is beyond the fine-tuning, which has {total_steps} "
            "optimizer steps (prune.finetune_epochs x batches per epoch); lower prune.end_step "
            "or raise prune.finetune_epochs"
        )


# The schedules by config name (config.PRUNE_SCHEDULES lists the same names).
SCHEDULES: dict[str, ScheduleFn] = {
    "one-shot": one_shot,
    "iterative": iterative,
    "agp": agp,
    "constant": constant,
}

# Schedules that count optimizer steps (begin_step / end_step / frequency apply to them).
STEP_SCHEDULES = ("agp", "constant")
