# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Pruning: masks, weight-selection heuristics, sparsity accounting
#
# > Global pruning of a fraction of the remaining prunable weights, by a score that a heuristic assigns.

# %%
#| default_exp prune

# %% [markdown]
# IMP (§2, step 2) "removes a specified fraction of the smallest-magnitude remaining weights" — 20% per level,
# **globally** across all prunable tensors (OpenLTH's `sparse_global` strategy), so layers lose weights at different
# rates. Appendix J.2 swaps the magnitude score for other heuristics; here a heuristic is one function
# `(model, names, context) -> {name: score tensor}`, registered in `STRATEGIES` with the settings it owns (as
# OpenLTH's strategies own their hparams), and the rest (which weights survive, the bookkeeping) is shared:
#
# * only weights still alive (mask = 1) compete;
# * exactly `round(fraction · alive)` of them are removed: the lowest scores, ties broken by position;
# * a mask is a float 0/1 tensor per prunable parameter name;
# * an *iterative* heuristic (one whose settings have `rounds`: SynFlow's 100, the spec's `synflow_rounds`) reaches
#   the level's target in geometric steps, rescoring with the current masks between steps, as Tanaka et al. prescribe.
#
# SynFlow and SNIP follow the Synaptic-Flow reference (ganguli-lab), which both run with the model in eval mode: SNIP
# on 10 × classes random training examples, SynFlow in 100 rounds. Each strategy owns its settings — their defaults
# and their validation, in a small frozen dataclass (`SynFlowSettings`, `SnipSettings`) — while their values stay
# fields of the run's `PruneSpec` (`synflow_rounds`, `snip_per_class`), so they are part of its identity (a setting at
# the value that a spec stored before it means, as SynFlow's 100 rounds, stays out of the hash: `00_config`).
#
# Registered heuristics: `magnitude` (IMP), `random` (iterative random pruning), `synflow`, `snip`, and `none`, which
# removes nothing: IMP with `none` is **extended dense training** (§5.1), the same epochs and cyclic schedule as
# pruning with every weight kept.
#
# The "% weights remaining" on the x-axes of the paper's figures counts prunable weights.

# %%
#| export
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from pruning_repro.config import ConfigError, PruneSpec, add_unique
from pruning_repro.train import Diverged, apply_masks

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close


# %%
#| export
def full_masks(model, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    "All-ones masks for the model's prunable tensors."
    params = dict(model.named_parameters())
    names = model.prunable_names() if names is None else names
    return {n: torch.ones_like(params[n], device="cpu") for n in names}

def density(masks: dict[str, torch.Tensor]) -> float:
    "Fraction of prunable weights remaining."
    total = sum(m.numel() for m in masks.values())
    return sum(float(m.sum()) for m in masks.values()) / total


# %% [markdown]
# ## Heuristics
#
# A heuristic scores in a `ScoringContext`, one typed value: the level's random generator, the run's data, the
# strategy's own settings, the current masks (set by `prune_masks` for each round), and a cache that lives for one
# `prune_masks` call (SynFlow keeps its float64 copy of the model there across its rounds).

# %%
#| export
@dataclass(frozen=True)
class ScoringContext:
    """What a heuristic is given besides the model: `generator` (the level's), `data` (the run's `Data`), `settings`
    (the strategy's settings dataclass; None for one without settings), `masks` (the current ones), `input_shape`
    (SynFlow's all-ones input where no data is given) and `cache`. A heuristic written against the dict this replaces
    still reads `context["data"]` or `context.get("masks")`."""
    generator: torch.Generator | None = None
    data: Any = None
    settings: Any = None
    masks: dict[str, torch.Tensor] | None = None
    input_shape: tuple | None = None
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, key: str):
        if key not in {f.name for f in fields(self)}: raise KeyError(key)
        return getattr(self, key)
    def get(self, key: str, default=None):
        v = getattr(self, key, None) if key in {f.name for f in fields(self)} else None
        return default if v is None else v


# %%
_c = ScoringContext(generator=torch.Generator(), input_shape=(2,))
test_eq((_c["input_shape"], _c.get("masks"), _c.get("data", 3)), ((2,), None, 3))
test_fail(lambda: _c["synflow_rounds"], contains="synflow_rounds")
test_fail(lambda: setattr(_c, "data", 1))               # frozen: a heuristic cannot change what the next one sees


# %%
#| export
def magnitude_scores(model: nn.Module, names: list[str], context: ScoringContext) -> dict[str, torch.Tensor]:
    "|w|: the magnitude heuristic of IMP."
    params = dict(model.named_parameters())
    return {n: params[n].detach().abs().cpu() for n in names}

def random_scores(model: nn.Module, names: list[str], context: ScoringContext) -> dict[str, torch.Tensor]:
    "Uniform random scores (iterative random pruning, App. C)."
    params, g = dict(model.named_parameters()), context.generator
    return {n: torch.rand(params[n].shape, generator=g) for n in names}


# %%
#| export
@dataclass(frozen=True)
class SynFlowSettings:
    "SynFlow's setting, a run's `prune.synflow_rounds`: scoring rounds per pruning level (Tanaka et al.'s 100)."
    rounds: int = 100

    def __post_init__(self):
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or self.rounds < 1:
            raise ConfigError(f"synflow_rounds must be an integer >= 1, got {self.rounds!r}")

def synflow_scores(model: nn.Module, names: list[str], context: ScoringContext) -> dict[str, torch.Tensor]:
    """SynFlow (Tanaka et al. 2020; App. C item 3): every parameter and buffer replaced by its absolute value (pruned
    weights stay zero), the model in eval mode, an all-ones input, R = sum of the logits, score |dR/dw ⊙ w|, as in the
    Synaptic-Flow reference. Unlike the reference (whose `.double()` calls are commented out, so it runs in float32),
    we compute in float64, our choice: R is a product over every layer of sums of |w|, which float32 can overflow or
    flush to zero on deep nets at high sparsity. The copy is made once per pruning step and kept in `context.cache`
    across SynFlow's rounds (each round only applies the current masks); the model itself is untouched."""
    cache = context.cache.get("synflow")
    if cache is None or cache[0] is not model:
        m = copy.deepcopy(model).double().eval()
        with torch.no_grad():
            for n, t in list(m.state_dict().items()):
                if t.is_floating_point(): t.abs_()
        cache = context.cache["synflow"] = (model, m, {n: p.detach().clone() for n, p in m.named_parameters()})
    _, m, absw = cache
    params = dict(m.named_parameters())
    with torch.no_grad():
        for n, p in params.items(): p.copy_(absw[n])
    apply_masks(m, context.masks)
    shape = context.input_shape or _input_shape(context)
    dev = next(m.parameters()).device
    m.zero_grad()
    m(torch.ones((1, *shape), dtype=torch.float64, device=dev)).sum().backward()
    return {n: (params[n].grad * params[n]).detach().abs().float().cpu() for n in names}

def _input_shape(context: ScoringContext) -> tuple:
    if context.data is None: raise ConfigError("SynFlow needs the input shape: give the context an input_shape or data")
    return tuple(context.data.info.input_shape)


# %%
#| export
@dataclass(frozen=True)
class SnipSettings:
    """SNIP's setting, a run's `prune.snip_per_class`: training examples scored per class (the reference's 10). None:
    a spec stored before the setting, whose SNIP differed; its results are read, never recomputed."""
    per_class: int | None = 10

    def __post_init__(self):
        if self.per_class is not None and (isinstance(self.per_class, bool) or not isinstance(self.per_class, int)
                                           or self.per_class < 1):
            raise ConfigError(f"snip_per_class must be an integer >= 1, got {self.per_class!r}")

def snip_scores(model: nn.Module, names: list[str], context: ScoringContext) -> dict[str, torch.Tensor]:
    """SNIP (Lee et al. 2019; App. C item 4) as the Synaptic-Flow reference computes it: |w ⊙ g|, g the gradient of
    the mean cross-entropy, accumulated over batches of at most 256, of `per_class` × classes training examples
    (the reference's `prune_dataset_ratio` = 10) drawn at random by the level's generator and augmented as in
    training (its loader is the training one), the model in **eval mode** (its `prune_loop` calls `model.eval()`),
    the current masks applied."""
    data, g = context.data, context.generator
    per_class = (context.settings or SnipSettings()).per_class
    if per_class is None:
        raise ConfigError("this SNIP spec predates the reference's settings (snip_per_class None): its stored results "
                          "can be read, but it cannot be recomputed; use snip_per_class=10")
    m = copy.deepcopy(model).eval()
    apply_masks(m, context.masks)
    params = dict(m.named_parameters())
    n_ex, seen = min(len(data.train), per_class * data.info.num_classes), 0
    m.zero_grad()
    for xb, yb, _ in data.train.batches(min(256, n_ex), shuffle=True, generator=g):
        xb, yb = xb[:n_ex - seen], yb[:n_ex - seen]
        F.cross_entropy(m(xb), yb).backward()
        seen += len(yb)
        if seen >= n_ex: break
    return {n: (params[n].grad * params[n]).detach().abs().cpu() for n in names}

def no_scores(model: nn.Module, names: list[str], context: ScoringContext) -> dict[str, torch.Tensor]:
    "Placeholder scores of the 'none' strategy (extended dense training): nothing is removed."
    return {}


# %% [markdown]
# A strategy is a registry entry that owns its settings. Setting `x` of strategy `name` is the field `name_x` of a
# run's `PruneSpec` (`synflow_rounds`, `snip_per_class`), so the run's identity stays one value, but the strategy
# gives its default and validates it, and a setting given to a strategy that does not own it is one error: it would
# name a new run that prunes exactly as another.

# %%
#| export
@dataclass(frozen=True)
class Strategy:
    """A weight-selection heuristic: `scores(model, names, context) -> {tensor name: scores}` and the settings it owns
    (a frozen dataclass with defaults, validating itself; None: it has none). Settings with `rounds` make it iterative."""
    name: str
    scores: Callable
    settings: type | None = None

    def spec_fields(self) -> dict[str, Any]:
        "The `PruneSpec` fields holding this strategy's settings, with their defaults."
        return {f"{self.name}_{f.name}": f.default for f in fields(self.settings)} if self.settings else {}
    def settings_of(self, prune: PruneSpec) -> Any:
        "This strategy's settings as `prune` holds them, validated by their class (None: it has none)."
        if self.settings is None: return None
        return self.settings(**{f.name: getattr(prune, f"{self.name}_{f.name}") for f in fields(self.settings)})

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("magnitude", magnitude_scores), Strategy("random", random_scores),
    Strategy("synflow", synflow_scores, SynFlowSettings), Strategy("snip", snip_scores, SnipSettings),
    Strategy("none", no_scores))}

def register_strategy(name: str, fn: Callable, settings: type | None = None) -> Callable:
    """Add a weight-selection heuristic `fn(model, names, context) -> {name: scores}`, with the settings dataclass it
    owns, if any (each setting `x` a `PruneSpec` field `name_x`)."""
    s = Strategy(name, fn, settings)
    missing = [k for k in s.spec_fields() if k not in {f.name for f in fields(PruneSpec)}]
    if missing: raise ConfigError(f"pruning strategy {name!r}: its settings must be PruneSpec fields; none is named "
                                  f"{', '.join(missing)}")
    add_unique(STRATEGIES, name, s, "pruning strategy")
    return fn

def strategy_settings(prune: PruneSpec) -> Any:
    """The settings of `prune.strategy`, validated by it; one `ConfigError` for an unknown strategy, a bad value, or a
    setting of another strategy away from its default (None: a spec stored before that setting, not a setting)."""
    if prune.strategy not in STRATEGIES:
        raise ConfigError(f"unknown pruning strategy {prune.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    for s in STRATEGIES.values():
        for k, default in s.spec_fields().items():
            v = getattr(prune, k)
            if s.name != prune.strategy and v is not None and v != default:
                raise ConfigError(f"prune.{k} = {v!r} is a setting of the {s.name!r} strategy, but this run prunes "
                                  f"with {prune.strategy!r}; leave it at its default ({default!r})")
    return STRATEGIES[prune.strategy].settings_of(prune)


# %%
for _s in STRATEGIES.values():                    # a spec's default is its strategy's default
    for _k, _v in _s.spec_fields().items(): test_eq(getattr(PruneSpec(), _k), _v)
test_eq(strategy_settings(PruneSpec("synflow", synflow_rounds=7)), SynFlowSettings(7))
test_eq(strategy_settings(PruneSpec("snip", snip_per_class=None)), SnipSettings(None))   # a stored SNIP spec, read
test_eq(strategy_settings(PruneSpec(snip_per_class=None)), None)
test_fail(lambda: strategy_settings(PruneSpec("synflow", synflow_rounds=0)), contains="synflow_rounds must be an integer >= 1, got 0")
test_fail(lambda: strategy_settings(PruneSpec("snip", snip_per_class=True)), contains="snip_per_class must be")
test_fail(lambda: strategy_settings(PruneSpec("random", synflow_rounds=10)),
          contains="prune.synflow_rounds = 10 is a setting of the 'synflow' strategy, but this run prunes with 'random'")
test_fail(lambda: register_strategy("_t", magnitude_scores, SnipSettings), contains="none is named _t_per_class")


# %% [markdown]
# ## Global selection

# %%
#| export
def prune_masks(model: nn.Module, masks: dict[str, torch.Tensor], fraction: float, strategy: str = "magnitude",
                context: ScoringContext | None = None) -> dict[str, torch.Tensor]:
    """New masks with `round(fraction · alive)` more weights removed, the lowest-scoring among those alive, globally;
    `context` without settings scores with the strategy's defaults."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown pruning strategy {strategy!r}; choose one of: {', '.join(STRATEGIES)}")
    if not 0 < fraction < 1: raise ConfigError(f"prune fraction must be in (0, 1), got {fraction}")
    if strategy == "none": return {n: m.clone() for n, m in masks.items()}
    st, names = STRATEGIES[strategy], list(masks)
    flat_m = torch.cat([masks[n].flatten() for n in names]).bool()
    n_alive = int(flat_m.sum())
    target = n_alive - int(round(fraction * n_alive))          # weights left after this level
    ctx = context or ScoringContext()
    settings = st.settings() if ctx.settings is None and st.settings else ctx.settings
    if st.settings and not isinstance(settings, st.settings):
        raise ConfigError(f"pruning strategy {strategy!r} takes {st.settings.__name__}, not {type(settings).__name__}")
    ctx = replace(ctx, settings=settings, cache={})            # the cache lives for this call (SynFlow's rounds)
    rounds = getattr(settings, "rounds", 1)                    # iterative heuristics: SynFlow's `rounds`
    for r in range(1, rounds + 1):
        # iterative heuristics approach the target geometrically: alive_r = alive_0 * (target/alive_0)^(r/rounds)
        keep = target if r == rounds else int(round(n_alive * (target / n_alive) ** (r / rounds)))
        ctx = replace(ctx, masks=_unflatten(flat_m, masks, names))
        flat_s = torch.cat([s.flatten() for s in strategy_scores(model, masks, strategy, ctx).values()])
        alive = flat_m.nonzero().squeeze(1)
        if not torch.isfinite(flat_s[alive]).all():
            raise Diverged(f"pruning refuses non-finite {strategy} scores ({int((~torch.isfinite(flat_s[alive])).sum())} "
                           f"of {alive.numel()} weights): the model they score has diverged")
        k = alive.numel() - keep
        if k > 0:
            # the k lowest scores, equal scores removed in position order (what a stable sort would pick), found with
            # one selection instead of a sort: SynFlow does this 100 times per level over every weight
            vals = flat_s[alive]
            thr = torch.kthvalue(vals, k).values
            less = vals < thr
            ties = (vals == thr).nonzero().squeeze(1)[:k - int(less.sum())]
            flat_m = flat_m.clone(); flat_m[alive[less]] = False; flat_m[alive[ties]] = False
    return _unflatten(flat_m, masks, names)

_BUILTIN = frozenset(STRATEGIES)   # the package's own heuristics: their errors are not a plugin's to answer for

def builtin_strategy(strategy: str) -> bool:
    "Whether `strategy` is one of the package's own heuristics (a plugin's is checked before it is first used)."
    return strategy in _BUILTIN

def strategy_scores(model: nn.Module, masks: dict[str, torch.Tensor], strategy: str, context: ScoringContext) -> dict:
    """The scores of `strategy` for the tensors of `masks`, as float CPU tensors, checked: one score per weight of
    every tensor, else one `ConfigError` naming the strategy, the tensor and what was wrong. A registered (plugin)
    strategy that raises is one such error too."""
    names, fn = list(masks), STRATEGIES[strategy].scores
    try: scores = fn(model, names, context)
    except (ConfigError, Diverged, torch.OutOfMemoryError): raise
    except Exception as e:
        if strategy in _BUILTIN: raise
        raise ConfigError(f"pruning strategy {strategy!r} failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
    if not isinstance(scores, dict):
        raise ConfigError(f"pruning strategy {strategy!r} returned a {type(scores).__name__}; expected a dict "
                          f"{{tensor name: scores shaped like the tensor}}")
    missing = [n for n in names if n not in scores]
    if missing:
        raise ConfigError(f"pruning strategy {strategy!r} returned no scores for {len(missing)} of the {len(names)} "
                          f"prunable tensors ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    out = {}
    for n in names:
        try: t = torch.as_tensor(scores[n]).detach()
        except Exception:
            raise ConfigError(f"pruning strategy {strategy!r} returned a {type(scores[n]).__name__} for {n!r}; "
                              f"expected a tensor of scores") from None
        if tuple(t.shape) != tuple(masks[n].shape):
            raise ConfigError(f"pruning strategy {strategy!r} returned scores of shape {tuple(t.shape)} for {n!r}, "
                              f"whose weights are {tuple(masks[n].shape)}: one score per weight expected")
        out[n] = t.float().cpu()
    return out

def _unflatten(flat: torch.Tensor, like: dict, names: list[str]) -> dict[str, torch.Tensor]:
    out, i = {}, 0
    for n in names:
        sz = like[n].numel()
        out[n] = flat[i:i + sz].view_as(like[n]).float(); i += sz
    return out


# %% [markdown]
# Checks on a hand-made model: the global threshold takes the smallest magnitudes wherever they are, pruned weights
# never come back, and the count is exact.

# %%
class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 2, bias=False); self.b = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[0.1, -2.0], [3.0, 0.05]])); self.b.weight.copy_(torch.tensor([[-0.2, 1.0]]))
    def prunable_names(self): return ["a.weight", "b.weight"]

m = Two()
ms = full_masks(m)
m1 = prune_masks(m, ms, 0.5)   # 6 alive -> remove 3: 0.05, 0.1, 0.2
test_eq(m1["a.weight"], torch.tensor([[0., 1.], [1., 0.]])); test_eq(m1["b.weight"], torch.tensor([[0., 1.]]))
test_close(density(m1), 0.5)
m2 = prune_masks(m, m1, 0.34)  # 3 alive -> remove 1: 1.0
test_eq(m2["b.weight"], torch.tensor([[0., 0.]])); test_eq(m2["a.weight"], m1["a.weight"])
test_fail(lambda: prune_masks(m, ms, 0.2, "oracle"), contains="unknown pruning strategy")
r = prune_masks(m, ms, 0.5, "random", ScoringContext(torch.Generator().manual_seed(0)))
test_eq(int(sum(v.sum() for v in r.values())), 3)

# %%
# a heuristic's scores are checked where they become masks: one score per weight of every prunable tensor
for _name, _fn in (("_t_short", lambda model, names, ctx: {n: torch.ones(1) for n in names}),
                   ("_t_missing", lambda model, names, ctx: {names[0]: torch.ones(2, 2)}),
                   ("_t_raises", lambda model, names, ctx: 1 / 0)):
    STRATEGIES[_name] = Strategy(_name, _fn)
test_fail(lambda: prune_masks(m, ms, 0.5, "_t_short"), contains="'_t_short' returned scores of shape (1,) for 'a.weight', whose weights are (2, 2)")
test_fail(lambda: prune_masks(m, ms, 0.5, "_t_missing"), contains="returned no scores for 1 of the 2 prunable tensors (b.weight)")
test_fail(lambda: prune_masks(m, ms, 0.5, "_t_raises"), contains="pruning strategy '_t_raises' failed: ZeroDivisionError")
for _name in ("_t_short", "_t_missing", "_t_raises"): STRATEGIES.pop(_name)


# %% [markdown]
# **SynFlow by hand.** For `f(x) = w₂ · relu(W₁ x)` with all-ones input and absolute weights,
# `R = Σⱼ |w₂ⱼ| Σᵢ |W₁ⱼᵢ|`, so the score of `W₁ⱼᵢ` is `|w₂ⱼ| |W₁ⱼᵢ|` and that of `w₂ⱼ` is `|w₂ⱼ| Σᵢ |W₁ⱼᵢ|`.

# %%
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(2, 2, bias=False); self.l2 = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.l1.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 3.0]])); self.l2.weight.copy_(torch.tensor([[-4.0, 0.25]]))
    def forward(self, x): return self.l2(torch.relu(self.l1(x)))
    def prunable_names(self): return ["l1.weight", "l2.weight"]

t = Tiny()
sc = synflow_scores(t, ["l1.weight", "l2.weight"], ScoringContext(input_shape=(2,)))
test_close(sc["l1.weight"], torch.tensor([[4.0, 8.0], [0.125, 0.75]]))
test_close(sc["l2.weight"], torch.tensor([[12.0, 0.875]]))
test_eq(t.l1.weight[0, 1].item(), -2.0)                     # the model itself is untouched
sm = prune_masks(t, full_masks(t), 0.5, "synflow", ScoringContext(input_shape=(2,)))
test_eq(sm["l1.weight"], torch.tensor([[1., 1.], [0., 0.]])); test_eq(sm["l2.weight"], torch.tensor([[1., 0.]]))
assert all(torch.equal(a, b) for a, b in zip(prune_masks(t, full_masks(t), 0.5, "none").values(), full_masks(t).values()))
test_fail(lambda: prune_masks(t, full_masks(t), 0.5, "synflow", ScoringContext(settings=SnipSettings())),
          contains="'synflow' takes SynFlowSettings, not SnipSettings")

# %% [markdown]
# **SNIP by hand.** For a single linear layer, the SNIP score of each weight is |w · ∂L/∂w| with L the mean loss of
# the batch (the reference's `CrossEntropyLoss`), which autograd must reproduce.

# %%
from pruning_repro.data import Data, DataInfo
from pruning_repro.tensors import TensorSplit
x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]]); y = torch.tensor([0, 1])
split = TensorSplit(x, y, torch.arange(2))
d = Data(split, split, split, y, torch.zeros(2, dtype=torch.bool), DataInfo(2, (2,), (0.,), (1.,)))
lin = nn.Linear(2, 2, bias=False)
with torch.no_grad(): lin.weight.copy_(torch.tensor([[0.3, -0.2], [0.1, 0.4]]))
lin.prunable_names = lambda: ["weight"]
g = torch.func.grad(lambda w: F.cross_entropy(x @ w.T, y, reduction="sum"))(lin.weight.detach())
ref = (g * lin.weight.detach()).abs()
got = snip_scores(lin, ["weight"], ScoringContext(torch.Generator().manual_seed(0), d))["weight"]
test_close(got, ref / len(y))          # the reference's loss is the batch mean: the same ranking as the sum


# %% [markdown]
# SNIP scores with the model in **eval mode** (BatchNorm uses its running statistics), as the reference's
# `prune_loop` does, on `snip_per_class` × classes examples; a spec stored before these settings cannot be recomputed.

# %%
class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(2, 3, bias=False); self.bn = nn.BatchNorm1d(3); self.fc = nn.Linear(3, 2, bias=False)
    def forward(self, x): return self.fc(torch.relu(self.bn(self.l1(x))))
torch.manual_seed(0); bnet = BNNet()
with torch.no_grad(): bnet.bn.running_mean.fill_(0.7); bnet.bn.running_var.fill_(3.0)
def grad_score(train_mode):
    m = copy.deepcopy(bnet).train(train_mode); m.zero_grad()
    F.cross_entropy(m(x), y).backward()
    return (m.l1.weight.grad * m.l1.weight).abs().detach()
got = snip_scores(bnet, ["l1.weight"], ScoringContext(torch.Generator().manual_seed(0), d))["l1.weight"]
test_close(got, grad_score(False)); assert not torch.allclose(got, grad_score(True))
assert bnet.training                                     # the model itself is untouched
big = Data(*(TensorSplit(torch.randn(500, 2), torch.randint(0, 2, (500,)), torch.arange(500)),) * 3,
           torch.zeros(500, dtype=torch.long), torch.zeros(500, dtype=torch.bool), DataInfo(2, (2,), (0.,), (1.,)))
class Counting(BNNet):
    seen = []                 # a class attribute: shared with the copy SNIP scores
    def forward(self, x): Counting.seen.append(len(x)); return super().forward(x)
snip_scores(Counting(), ["l1.weight"], ScoringContext(torch.Generator().manual_seed(0), big, SnipSettings(7)))
test_eq(Counting.seen, [14])  # 7 per class × 2 classes, one batch
test_fail(lambda: snip_scores(bnet, ["l1.weight"], ScoringContext(torch.Generator(), big, SnipSettings(None))),
          contains="cannot be recomputed")

# %% [markdown]
# Twenty levels of 20% leave 0.8²⁰ ≈ 1.15% of the weights (the paper's trajectories end between 13.4% and 0.19%,
# `00_config`):

# %%
from pruning_repro.models import LeNet
net = LeNet(784, 10)
masks = full_masks(net)
dens = []
for _ in range(20):
    masks = prune_masks(net, masks, 0.2); dens.append(density(masks))
assert abs(dens[-1] - 0.8 ** 20) < 1e-4
[f"{d:.2%}" for d in dens[::4]]

# %% [markdown]
# Global selection lets layers thin at different rates. Per layer, the fraction of weights left along those twenty
# levels of magnitude pruning on the (untrained, Kaiming-initialised) LeNet: the small 300×100 layer, whose weights
# are drawn with a larger variance (fan-in 300 vs 784), keeps more of its weights than the 784×300 one.

# %%
import matplotlib.pyplot as plt
from pruning_repro.config import ModelSpec
from pruning_repro.data import INFO
from pruning_repro.models import build_model
net = build_model(ModelSpec("lenet"), INFO["mnist"], seed=0)
masks, per_layer = full_masks(net), []
for _ in range(20):
    masks = prune_masks(net, masks, 0.2)
    per_layer.append({n: float(m.mean()) for n, m in masks.items()} | {"all": density(masks)})
fig, ax = plt.subplots(figsize=(6, 2.8))
for n in per_layer[0]:
    ax.plot(range(1, 21), [100 * d[n] for d in per_layer], "-o", ms=3, label=n)
ax.set_yscale("log"); ax.set_xlabel("pruning level"); ax.set_ylabel("% weights left"); ax.legend(fontsize=7)
fig.tight_layout()
assert per_layer[-1]["fc_layers.1.weight"] > per_layer[-1]["fc_layers.0.weight"]
