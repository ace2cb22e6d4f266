"""An AMC-style reinforcement-learning agent that allocates per-layer sparsity under a budget.

He, Lin, Liu, Wang, Li & Han, "AMC: AutoML for Model Compression and Acceleration on Mobile
Devices", ECCV 2018. As in AMC the agent walks the layers in order; at layer t it observes an
embedding s_t normalised to [0, 1] (layer index, fan in, fan out, params, weight bits, per
budgeted resource the saving already taken by earlier layers and the saving the later layers
can still give, the previous action) and outputs the layer's sparsity a_t. As in AMC's
resource-constrained mode, a_t is raised to the least sparsity for which the design still fits
with every later layer at the maximum sparsity, so every episode fits and the reward is just
``evaluate``'s score (AMC: validation accuracy without fine-tuning). As in AMC, random episodes
come first (``warmup``), the episode's reward is given to every step, and a moving average of
the reward (alpha 0.5) is subtracted.

What differs from AMC:

- an on-policy advantage actor-critic in place of DDPG and its replay buffer: a Gaussian policy
  whose mean is max_sparsity * sigmoid(MLP(s_t)), and a critic V(s_t) that is the baseline on
  top of the moving average; the critic regresses the reward in units of the rewards' standard
  deviation, and each batch's advantages are scaled to unit deviation;
- episodes come in batches: ``batch`` episodes with the current policy, evaluated together
  (the caller runs them in parallel), then up to STEPS_PER_BATCH steps on that batch under
  PPO's clipped ratio, stopped early once the policy has moved KL_STOP from the sampling one;
- the log-likelihood is that of the sampled sparsity, before the budget clip (AMC's DDPG
  stores the clipped action);
- the exploration noise is the policy's standard deviation, decayed geometrically from 0.2 to
  0.05 over the policy episodes (AMC: a truncated normal around the actor's action, sigma 0.5
  decayed by 0.95 an episode over hundreds of episodes);
- with ``fill`` (what ``train --fit --search rl`` uses), no clip: at the end of an episode its
  actions are projected onto the budget, every layer's sparsity shifted by one logit shift to
  the least sparse allocation that fits. With AMC's clip, a first layer chosen below its
  minimum is raised to it, every later layer is then forced to the maximum, and on these
  small networks nearly every episode landed in that same corner (digits on arty-a7-35t:
  120 of 128 episodes identical), leaving the agent nothing to learn from;
- resources are the estimator's predictions (``Problem.predict``: lut, ff, dsp, bram18,
  latency) rather than FLOPs, and any number of them may be budgeted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hwprune.auto.problem import Allocation, Problem
from hwprune.errors import HwpruneError

HIDDEN = 64  # AMC uses 300 x 300; a handful of layers needs far less
LR = 1e-2
STEPS_PER_BATCH = 20  # at most this many gradient steps on each batch of episodes
CLIP = 0.2  # PPO's ratio clip (Schulman et al., 2017)
# Stop a batch's steps once the policy has moved this far from the one that sampled it (mean
# KL); Adam's momentum otherwise carries the mean well past the clip, and the search collapses.
KL_STOP = 0.05
SIGMA_START, SIGMA_END = 0.2, 0.05  # policy std (sparsity units), first and last policy episode
MOVING_ALPHA = 0.5  # AMC's moving-average weight of the newest batch's mean reward
BISECT_STEPS = 40  # (the clip asks a fast surrogate, not the estimator)
FILL_SHIFT = 14.0  # the largest logit shift ``project`` tries, either way


@dataclass(frozen=True)
class RLResult:
    """``best``: the highest-reward allocation seen (every episode fits the budget);
    ``history``: one dict per episode (episode, warmup, allocation, reward, predicted, fits)."""

    best: Allocation
    best_reward: float
    history: tuple[dict, ...]
    seconds: float


def _mlp(sizes: list[int], gen: torch.Generator) -> nn.Sequential:
    """A tanh MLP initialised from ``gen`` only (skip_init keeps the global RNG untouched)."""
    mods: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        lin = nn.utils.skip_init(nn.Linear, n_in, n_out)
        bound = 1.0 / math.sqrt(n_in)  # torch's default Linear range
        with torch.no_grad():
            nn.init.uniform_(lin.weight, -bound, bound, generator=gen)
            nn.init.zeros_(lin.bias)
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(nn.Tanh())
    return nn.Sequential(*mods)


class _Env:
    """One episode at a time: the layer embedding and AMC's budget-keeping clip."""

    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self.names = problem.names
        self.top = problem.max_sparsity
        floor = problem.overflow(problem.uniform(self.top))
        if floor:
            over = ", ".join(
                f"{r} by {v:.6g} (budget {problem.budget[r]:.6g})" for r, v in floor.items()
            )
            raise HwpruneError(
                f"the budget cannot be met even with every layer at the maximum sparsity "
                f"{self.top}: the prediction exceeds {over}; raise the budget or choose a "
                f"larger board"
            )
        self.resources = sorted(problem.budget)
        # Each resource's features are fractions of the largest saving all layers can give.
        self.span = {}
        for r in self.resources:
            total = -sum(problem.change(n, self.top, r) for n in self.names)
            self.span[r] = total if total > 0 else 1.0
        ly = problem.layers
        self.static = [
            [
                t / max(len(ly) - 1, 1),
                x.fan_in / max(y.fan_in for y in ly),
                x.fan_out / max(y.fan_out for y in ly),
                x.params / max(y.params for y in ly),
                x.weight_bits / max(y.weight_bits for y in ly),
            ]
            for t, x in enumerate(ly)
        ]
        self.dim = 5 + 2 * len(self.resources) + 1

    def state(self, chosen: list[float]) -> list[float]:
        t = len(chosen)
        feats = list(self.static[t])
        for r in self.resources:
            taken = -sum(self.p.change(n, s, r) for n, s in zip(self.names, chosen, strict=False))
            rest = -sum(self.p.change(n, self.top, r) for n in self.names[t + 1 :])
            feats += [min(max(v / self.span[r], 0.0), 1.0) for v in (taken, rest)]
        return feats + [chosen[-1] / self.top if chosen else 0.0]

    def project(self, chosen: list[float]) -> list[float]:
        """The episode's actions onto the budget: every layer's sparsity moved by the same
        shift of its logit, the least sparse allocation that fits. The actions say how the
        layers share the pruning; the budget says how much there is."""
        top = self.top

        def shifted(t: float) -> list[float]:
            out = []
            for s in chosen:
                x = min(max(s / top, 1e-3), 1 - 1e-3)
                out.append(top / (1.0 + math.exp(-(math.log(x / (1 - x)) - t))))
            return out

        def fits(t: float) -> bool:
            return self.p.fits(dict(zip(self.names, shifted(t), strict=True)))

        lo, hi = -FILL_SHIFT, FILL_SHIFT  # most sparse (every layer near the top) .. least
        if fits(hi):
            return shifted(hi)
        for _ in range(BISECT_STEPS):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return shifted(lo)

    def clip(self, chosen: list[float], a: float) -> float:
        """The least sparsity >= ``a`` for layer len(chosen) with which the design fits when
        every later layer takes the maximum (it fits at the maximum by induction)."""
        t = len(chosen)

        def fits(s: float) -> bool:
            rest = [self.top] * (len(self.names) - t - 1)
            return self.p.fits(dict(zip(self.names, [*chosen, s, *rest], strict=True)))

        a = min(max(a, 0.0), self.top)
        if fits(a):
            return a
        lo, hi = a, self.top
        for _ in range(BISECT_STEPS):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if fits(mid) else (mid, hi)
        return hi


def search_rl(
    problem: Problem,
    evaluate: Callable[[list[Allocation]], list[float]],
    *,
    episodes: int = 64,
    batch: int = 8,
    seed: int = 0,
    warmup: int = 8,
    progress: bool = True,
    fill: bool = False,
) -> RLResult:
    """Search a per-layer sparsity allocation with an AMC-style actor-critic agent.

    ``evaluate`` scores a batch of allocations (higher is better). ``episodes`` counts the
    ``warmup`` random episodes too. Every episode fits ``problem.budget`` by
    ``problem.predict``; the same ``seed`` and a deterministic ``evaluate`` give the same
    history. ``fill``: instead of AMC's clip, each episode's actions are projected onto the
    budget at its end (``_Env.project``), so every episode spends the budget and episodes
    differ only in how they share it. Raises HwpruneError when even the maximum sparsity
    everywhere does not fit.
    """
    from tqdm import tqdm

    if episodes < 1 or batch < 1 or warmup < 0:
        raise HwpruneError(
            f"search_rl needs episodes >= 1, batch >= 1 and warmup >= 0 "
            f"(got {episodes}, {batch}, {warmup})"
        )
    start = time.perf_counter()
    env = _Env(problem)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    actor = _mlp([env.dim, HIDDEN, HIDDEN, 1], gen)
    critic = _mlp([env.dim, HIDDEN, HIDDEN, 1], gen)
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=LR)
    n_policy = max(episodes - warmup, 1)
    decay = (SIGMA_END / SIGMA_START) ** (1.0 / max(n_policy - 1, 1))

    history: list[dict] = []
    seen: list[float] = []
    moving: float | None = None
    best, best_reward = {}, -math.inf
    bar = tqdm(total=episodes, desc="rl search", unit="episode", disable=not progress)
    done = 0
    while done < episodes:
        random_phase = done < warmup
        size = min(batch, (warmup if random_phase else episodes) - done)
        states, samples, sigmas, allocs = [], [], [], []
        for e in range(done, done + size):
            sigma = SIGMA_START * decay ** max(e - warmup, 0)
            chosen: list[float] = []
            for _ in env.names:
                s = env.state(chosen)
                if random_phase:
                    a = float(rng.uniform(0.0, env.top))
                else:
                    with torch.no_grad():
                        mean = _mean(actor, torch.tensor([s]), env.top).item()
                    a = mean + sigma * torch.randn((), generator=gen).item()
                states.append(s)
                if fill:  # projected onto the budget at the end of the episode
                    chosen.append(min(max(a, 0.0), env.top))
                else:
                    chosen.append(env.clip(chosen, a))
                if not random_phase:
                    # The sampled action, not the clipped one: with the clipped one, a layer
                    # left too low (so the last layers are forced to the maximum and the
                    # reward is poor) would be pushed lower still.
                    samples.append(a)
                    sigmas.append(sigma)
            if fill:
                chosen = env.project(chosen)
            allocs.append(dict(zip(env.names, chosen, strict=True)))
        rewards = [float(r) for r in evaluate(allocs)]
        if len(rewards) != len(allocs):
            raise HwpruneError(
                f"evaluate returned {len(rewards)} rewards for {len(allocs)} allocations; "
                f"it must return one reward per allocation, in order"
            )
        for k, (alloc, reward) in enumerate(zip(allocs, rewards, strict=True)):
            pred = problem.predict(alloc)
            history.append(
                {
                    "episode": done + k,
                    "warmup": random_phase,
                    "allocation": alloc,
                    "reward": reward,
                    "predicted": pred,
                    "fits": problem.fits(alloc),
                }
            )
            if reward > best_reward:
                best, best_reward = alloc, reward
        seen += rewards
        mean_r = float(np.mean(rewards))
        moving = mean_r if moving is None else moving + MOVING_ALPHA * (mean_r - moving)
        scale = max(float(np.std(seen)), 1e-8)
        # The episode's reward goes to every one of its steps, as in AMC.
        per_step = [(r - moving) / scale for r in rewards for _ in env.names]
        _update(actor, critic, opt, states, per_step, samples, sigmas, random_phase, env.top)
        done += size
        bar.update(size)
        bar.set_postfix(best=f"{best_reward:.4f}")
    bar.close()
    return RLResult(best, best_reward, tuple(history), time.perf_counter() - start)


def _mean(actor: nn.Module, s: torch.Tensor, top: float) -> torch.Tensor:
    """The policy's mean sparsity, squashed into [0, top]."""
    return top * torch.sigmoid(actor(s).squeeze(-1))


def _update(actor, critic, opt, states, targets, samples, sigmas, random_phase, top) -> None:
    """Advantage actor-critic on one batch: the critic regresses the (baselined, scaled)
    episode reward; the actor raises the likelihood of its sampled actions in proportion to the
    advantage, through PPO's clipped ratio (Schulman et al., 2017) so that several steps on the
    same batch stay near the policy that sampled it. Random warm-up episodes train only the
    critic (they are not the policy's samples)."""
    s = torch.tensor(states)
    target = torch.tensor(targets)
    if not random_phase:
        u, sigma = torch.tensor(samples), torch.tensor(sigmas)
        with torch.no_grad():
            logp_old = -((u - _mean(actor, s, top)) ** 2) / (2 * sigma**2)
            adv = target - critic(s).squeeze(-1)
            # Per-batch scaling keeps Adam's steps alike as the rewards draw together.
            adv = adv / max(adv.std().item(), 1e-6)
    for _ in range(STEPS_PER_BATCH):
        value = critic(s).squeeze(-1)
        loss = ((value - target) ** 2).mean()
        if not random_phase:
            logp = -((u - _mean(actor, s, top)) ** 2) / (2 * sigma**2)
            if (logp_old - logp).mean().item() > KL_STOP:
                break
            ratio = torch.exp(logp - logp_old)
            gain = torch.minimum(ratio * adv, ratio.clamp(1 - CLIP, 1 + CLIP) * adv)
            loss = loss - gain.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
