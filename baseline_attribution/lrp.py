"""Transformer relevance propagation (Chefer, Gur & Wolf, CVPR 2021, "Transformer Interpretability
Beyond Attention Visualization"): ``chefer-lrp``, the benchmark's ``CheferLRP``.

The method
----------
1. Relevance starts as the one-hot vector of the target class at the logits (value 1) and is
   propagated back through the head, the class token and every block by LRP:

   * linear layers (head, qkv, proj, fc1, fc2): the αβ rule with α = 1, β = 0 on signed inputs,
     R_i = x⁺_i Σ_j W⁺_ji R_j / Z_j + x⁻_i Σ_j W⁻_ji R_j / Z_j,
     Z_j = Σ_i (W⁺_ji x⁺_i + W⁻_ji x⁻_i) (biases take no relevance; an output with Z_j = 0 passes none on);
   * residual additions z = a + b: R_a = a R / z, R_b = b R / z, then each part rescaled so that
     its total is |ΣR_a| / (|ΣR_a| + |ΣR_b|) · ΣR (and likewise for b; sums per image);
   * the two matrix products of attention (q kᵀ and A v): R_a = a ⊙ ∂(Σ S ⊙ (ab))/∂a with
     S = R / (ab), the same for b, each halved;
   * LayerNorm, GELU, softmax, dropout and LayerScale pass relevance through unchanged;
     a token stream used twice (residual and branch) receives the sum of both relevances.

   Every rule above conserves relevance exactly (Σ input relevance = Σ output relevance)
   wherever no denominator is zero (:func:`linear_relevance`, :func:`add_relevance`,
   :func:`matmul_relevance`, :func:`block_relevance`).
2. Per block, R^(A) is the relevance of the softmax attention map A (B×heads×N×N) and ∇A the
   gradient of the target **logit** with respect to A;
   Ā = E_heads[(∇A ⊙ R^(A))⁺], and the maps are rolled out from block ``start_layer`` on:
   C = (Ā_L + I) ⋯ (Ā_s + I) (no row normalisation, as in the authors' code).
3. The map is the class token's row over the patch tokens, C[0, prefix:], laid out on the patch
   grid and upsampled bilinearly to H×W. Raw values unless ``normalize=True`` (min-max).

The authors' code rolls out from block 0 by default; Hesse et al.'s benchmark calls it with
``start_layer=1`` (what ``evals.attribution_benchmark --explainer CheferLRP`` passes).

Supported networks: timm ``VisionTransformer`` with a class token read by the head
(``global_pool="token"``), blocks of timm ``Block`` (``norm1, attn, ls1, norm2, mlp, ls2``) whose
``Attention`` has no q/k normalisation, no output norm and no gate, and an ``Mlp``
(``fc1, act, fc2``, no inner norm). The relevance pass re-reads every sub-layer's inputs and
outputs through forward hooks during one ordinary forward pass (fused attention switched off for
the call, see :func:`baseline_attribution.transformer.capture_attentions`), and checks that the
block's output equals the residual sums it assumes. Anything else raises a TypeError.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

import torch
from torch import nn

from .base import AttributionModel, register
from .cam import finish_maps
from .models import vit_layout
from .transformer import capture_attentions

__all__ = [
    "BlockRecord",
    "add_relevance",
    "block_relevance",
    "chefer_lrp",
    "linear_relevance",
    "lrp_relevances",
    "matmul_relevance",
    "rollout_lrp",
]


def _safe_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b where b ≠ 0, else 0."""
    nonzero = b != 0
    return torch.where(nonzero, a / torch.where(nonzero, b, torch.ones_like(b)), torch.zeros_like(a))


def linear_relevance(x: torch.Tensor, weight: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """LRP-αβ (α = 1, β = 0) through ``y = x Wᵀ (+ b)``: x (…×in), W (out×in), relevance (…×out)
    -> (…×in). Positive contributions only: Z_j = Σ_i W⁺_ji x⁺_i + W⁻_ji x⁻_i; the bias takes none.
    Σ_i R_i = Σ_j R_j over the outputs with Z_j ≠ 0."""
    wp, wn = weight.clamp(min=0), weight.clamp(max=0)
    xp, xn = x.clamp(min=0), x.clamp(max=0)
    z = xp @ wp.T + xn @ wn.T
    s = _safe_divide(relevance, z)
    return xp * (s @ wp) + xn * (s @ wn)


def add_relevance(a: torch.Tensor, b: torch.Tensor, relevance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance of both operands of ``z = a + b`` (B×…): z-rule shares R_a = a R/z, R_b = b R/z,
    each rescaled per image to |ΣR_a|/(|ΣR_a| + |ΣR_b|) · ΣR (resp. b), so ΣR_a + ΣR_b = ΣR."""
    s = _safe_divide(relevance, a + b)
    ra, rb = a * s, b * s
    dims = tuple(range(1, relevance.ndim))
    total = relevance.sum(dim=dims, keepdim=True)
    sa, sb = ra.sum(dim=dims, keepdim=True), rb.sum(dim=dims, keepdim=True)
    norm = sa.abs() + sb.abs()
    ra = ra * _safe_divide(_safe_divide(sa.abs(), norm) * total, sa)
    rb = rb * _safe_divide(_safe_divide(sb.abs(), norm) * total, sb)
    return ra, rb


def matmul_relevance(a: torch.Tensor, b: torch.Tensor, relevance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance of both factors of ``z = a @ b`` (batched): with S = R/z,
    R_a = a ⊙ (S bᵀ)/2 and R_b = b ⊙ (aᵀ S)/2; each half sums to ΣR/2 (z ≠ 0)."""
    s = _safe_divide(relevance, a @ b)
    return a * (s @ b.transpose(-2, -1)) / 2, b * (a.transpose(-2, -1) @ s) / 2


@dataclass
class BlockRecord:
    """What one timm ``Block`` computed in the forward pass (all B×N×…, detached):
    x_in (block input), n1 (qkv input), qkv (qkv output), attn (softmax map, B×heads×N×N),
    ctx (proj input), branch1 (ls1 output), n2 (fc1 input), hidden (fc2 input), branch2 (ls2
    output), x_out (block output)."""

    x_in: torch.Tensor
    n1: torch.Tensor
    qkv: torch.Tensor
    attn: torch.Tensor
    ctx: torch.Tensor
    branch1: torch.Tensor
    n2: torch.Tensor
    hidden: torch.Tensor
    branch2: torch.Tensor
    x_out: torch.Tensor


def block_relevance(block: nn.Module, rec: BlockRecord, relevance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LRP through one timm ``Block``: relevance of its output tokens (B×N×D) -> (relevance of its
    input tokens B×N×D, relevance of its attention map B×heads×N×N). Conserves Σ relevance."""
    attn = block.attn
    heads, head_dim = attn.num_heads, attn.head_dim
    b, n, _ = rec.x_in.shape
    x_mid = rec.x_in + rec.branch1
    r_mid_skip, r_branch2 = add_relevance(x_mid, rec.branch2, relevance)
    r_hidden = linear_relevance(rec.hidden, block.mlp.fc2.weight, r_branch2)  # ls2, drop: identity
    r_n2 = linear_relevance(rec.n2, block.mlp.fc1.weight, r_hidden)  # act: identity
    r_mid = r_mid_skip + r_n2  # norm2: identity; the stream feeds both the skip and the branch
    r_in_skip, r_branch1 = add_relevance(rec.x_in, rec.branch1, r_mid)
    r_ctx = linear_relevance(rec.ctx, attn.proj.weight, r_branch1)
    r_ctx = r_ctx.reshape(b, n, heads, head_dim).transpose(1, 2)  # B×heads×N×head_dim
    qkv = rec.qkv.reshape(b, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * attn.scale, qkv[1], qkv[2]
    r_attn, r_v = matmul_relevance(rec.attn, v, r_ctx)
    r_q, r_kt = matmul_relevance(q, k.transpose(-2, -1), r_attn)  # softmax, attn_drop: identity
    r_qkv = torch.stack([r_q, r_kt.transpose(-2, -1), r_v]).permute(1, 3, 0, 2, 4).reshape(b, n, 3 * heads * head_dim)
    r_n1 = linear_relevance(rec.n1, attn.qkv.weight, r_qkv)
    return r_in_skip + r_n1, r_attn  # norm1: identity


def _check_block(i: int, block: nn.Module) -> None:
    needed = ("norm1", "attn", "ls1", "norm2", "mlp", "ls2")
    attn, mlp = getattr(block, "attn", None), getattr(block, "mlp", None)
    problems = [name for name in needed if not hasattr(block, name)]
    if not problems:
        if not all(isinstance(getattr(attn, m, None), nn.Linear) for m in ("qkv", "proj")):
            problems.append("attn.qkv/attn.proj Linear")
        for name in ("q_norm", "k_norm", "norm"):
            if not isinstance(getattr(attn, name, nn.Identity()), nn.Identity):
                problems.append(f"attn.{name} (must be Identity)")
        if getattr(attn, "gate", None) is not None:
            problems.append("attn.gate (must be None)")
        if not all(isinstance(getattr(mlp, m, None), nn.Linear) for m in ("fc1", "fc2")):
            problems.append("mlp.fc1/mlp.fc2 Linear")
        if not isinstance(getattr(mlp, "norm", nn.Identity()), nn.Identity):
            problems.append("mlp.norm (must be Identity)")
    if problems:
        raise TypeError(f"chefer-lrp: block {i} ({type(block).__name__}) is not a supported timm Block: "
                        f"{', '.join(problems)}")


def _check_network(module: nn.Module | None) -> int:
    """The number of prefix tokens of a supported ViT; TypeError otherwise."""
    layout = vit_layout(module)
    if layout is None or layout.kind != "timm":
        name = "no network" if module is None else type(module).__name__
        raise TypeError(f"chefer-lrp supports timm VisionTransformer-style models only, got {name}")
    if getattr(module, "cls_token", None) is None or getattr(module, "global_pool", None) != "token":
        raise TypeError(f"chefer-lrp needs a class token read by the head (global_pool='token'); "
                        f"{type(module).__name__} has global_pool={getattr(module, 'global_pool', None)!r}")
    if getattr(module, "attn_pool", None) is not None or not isinstance(getattr(module, "head", None), nn.Linear):
        raise TypeError("chefer-lrp needs a Linear head on the class token (no attention pooling)")
    for i, block in enumerate(module.blocks):
        _check_block(i, block)
    return layout.num_prefix_tokens


def lrp_relevances(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor):
    """One forward pass and the LRP backward pass of :mod:`this module <baseline_attribution.lrp>`
    for a batch: returns (relevance of the block stack's input tokens B×N×D, [R^(A) per block],
    [∇A per block], logits B×C). The first sums to 1 per image (the one-hot start) wherever no
    LRP denominator vanishes."""
    module = model.module
    _check_network(module)
    blocks = list(module.blocks)
    store: dict[tuple[int, str], torch.Tensor] = {}
    head_input: list[torch.Tensor] = []

    def keep(i, name, use_output):
        def hook(_m, inputs, output=None):
            store[(i, name)] = (output if use_output else inputs[0]).detach()
        return hook

    x = images.detach().clone().requires_grad_(True)
    with ExitStack() as stack, torch.enable_grad():
        attns = stack.enter_context(capture_attentions(module))
        handles = [module.head.register_forward_pre_hook(lambda _m, inputs: head_input.append(inputs[0].detach()))]
        for i, blk in enumerate(blocks):
            handles += [blk.register_forward_pre_hook(keep(i, "x_in", False)),
                        blk.register_forward_hook(keep(i, "x_out", True)),
                        blk.attn.qkv.register_forward_pre_hook(keep(i, "n1", False)),
                        blk.attn.qkv.register_forward_hook(keep(i, "qkv", True)),
                        blk.attn.proj.register_forward_pre_hook(keep(i, "ctx", False)),
                        blk.ls1.register_forward_hook(keep(i, "branch1", True)),
                        blk.mlp.fc1.register_forward_pre_hook(keep(i, "n2", False)),
                        blk.mlp.fc2.register_forward_pre_hook(keep(i, "hidden", False)),
                        blk.ls2.register_forward_hook(keep(i, "branch2", True))]
        stack.callback(lambda: [h.remove() for h in handles])
        logits = model.logits(x)
        if len(attns) != len(blocks) or len(head_input) != 1:
            raise RuntimeError(f"chefer-lrp: captured {len(attns)} attention maps and {len(head_input)} head inputs "
                               f"in one forward pass, expected {len(blocks)} and 1")
        score = logits.gather(1, targets.view(-1, 1)).sum()
        grads = torch.autograd.grad(score, list(attns), allow_unused=True)
    grads = [torch.zeros_like(a) if g is None else g.detach() for a, g in zip(attns, grads)]
    records = []
    for i in range(len(blocks)):
        rec = BlockRecord(**{name: store[(i, name)] for name in BlockRecord.__dataclass_fields__ if name != "attn"},
                          attn=attns[i].detach())
        if not torch.allclose(rec.x_in + rec.branch1 + rec.branch2, rec.x_out, rtol=1e-4, atol=1e-5):
            raise TypeError(f"chefer-lrp: block {i}'s output is not input + attention branch + MLP branch "
                            "(an unsupported block variant)")
        records.append(rec)

    with torch.no_grad():  # the relevance pass needs no graph
        one_hot = torch.zeros_like(logits.detach()).scatter_(1, targets.view(-1, 1), 1.0)
        r_pooled = linear_relevance(head_input[0], module.head.weight, one_hot)  # fc_norm: identity
        relevance = torch.zeros_like(records[-1].x_out)
        relevance[:, 0] = r_pooled  # the class token (final norm: identity)
        attn_relevances = [None] * len(blocks)
        for i in reversed(range(len(blocks))):
            relevance, attn_relevances[i] = block_relevance(blocks[i], records[i], relevance)
    return relevance, attn_relevances, grads, logits.detach()


def rollout_lrp(attn_relevances: list[torch.Tensor], grads: list[torch.Tensor], start_layer: int = 0) -> torch.Tensor:
    """C = Π_{l ≥ start_layer} (E_heads[(∇A_l ⊙ R^(A)_l)⁺] + I), later blocks on the left; B×N×N."""
    if not 0 <= start_layer < len(attn_relevances):
        raise ValueError(f"start_layer must be in 0..{len(attn_relevances) - 1}, got {start_layer}")
    n = attn_relevances[0].shape[-1]
    eye = torch.eye(n, dtype=attn_relevances[0].dtype, device=attn_relevances[0].device)
    joint = None
    for r, g in list(zip(attn_relevances, grads))[start_layer:]:
        layer = (g * r).clamp(min=0).mean(dim=1) + eye
        joint = layer if joint is None else layer @ joint
    return joint


@register("chefer-lrp")
def chefer_lrp(model: AttributionModel, images: torch.Tensor, targets: torch.Tensor, *, start_layer: int = 0,
               normalize: bool = False) -> torch.Tensor:
    """Chefer et al. (CVPR 2021) transformer attribution for the target class (module docstring):
    LRP relevance of each block's attention map weighted by its logit gradient, rolled out from
    ``start_layer``; class-token row over the patches, upsampled bilinearly to H×W."""
    prefix = _check_network(model.module)
    maps = []
    for chunk, chunk_targets in zip(images.split(model.batch_size), targets.split(model.batch_size)):
        _, attn_relevances, grads, _ = lrp_relevances(model, chunk, chunk_targets)
        maps.append(rollout_lrp(attn_relevances, grads, start_layer)[:, 0, prefix:])
    scores = torch.cat(maps)
    h, w = vit_layout(model.module).patch_grid(scores.shape[1])
    return finish_maps(scores.reshape(-1, h, w), images.shape[-2:], normalize)
