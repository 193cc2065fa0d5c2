"""The four score terms of the submodular objective and their weights.

For a set S of regions and target class t (spec §3):

* consistency   p_t(insert(S))
* collaboration 1 − p_t(delete(S))
* confidence    1 − H(p(insert(S))) / log C, or 1 − u of an evidential (EDL) head
* effectiveness Σ_{i∈S} min_{j∈S, j≠i} arccos(cos(e_i, e_j)) / π   (0 when |S| ≤ 1)

F(S) = λ_conf·conf + λ_eff·eff + λ_cons·cons + λ_colla·colla.
"""
from __future__ import annotations

import math
from dataclasses import astuple, dataclass

import torch

# Original CLI order of --lambda1..--lambda4. (The LIMA paper prints another
# order; this one is what the code and result folder names use.)
POSITIONAL_ORDER = ("confidence", "effectiveness", "consistency", "collaboration")


@dataclass(frozen=True)
class Weights:
    """Named weights of the objective; ``positional()`` gives λ1..λ4."""

    confidence: float = 0.0
    effectiveness: float = 0.05
    consistency: float = 1.0
    collaboration: float = 1.0

    @classmethod
    def from_positional(cls, lambda1: float, lambda2: float, lambda3: float, lambda4: float) -> "Weights":
        return cls(float(lambda1), float(lambda2), float(lambda3), float(lambda4))

    def positional(self) -> tuple[float, float, float, float]:
        return astuple(self)

    def folder_text(self) -> str:
        """``0.0-0.05-1.0-1.0``: Python float text in positional order, as result folders use."""
        return "-".join(str(float(x)) for x in self.positional())


def entropy_confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 − H(p)/log C for B×C probabilities → (B,); 1 for one-hot, 0 for uniform."""
    num_classes = probs.shape[-1]
    if num_classes < 2:
        raise ValueError("entropy confidence needs at least 2 classes")
    entropy = -torch.special.xlogy(probs, probs).sum(dim=-1)
    return 1.0 - entropy / math.log(num_classes)


def edl_confidence(evidence_logits: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """1 − u of an evidential head: evidence = exp(clamp(z·s, −10, 10)), α = evidence + 1, u = C/Σα."""
    evidence = torch.exp(torch.clamp(evidence_logits * scale, -10.0, 10.0))
    alpha = evidence + 1.0
    return 1.0 - evidence_logits.shape[-1] / alpha.sum(dim=-1)


def angular_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """N×D embeddings → N×N matrix arccos(cos(e_i, e_j))/π in [0, 1]."""
    unit = torch.nn.functional.normalize(embeddings.double(), dim=-1)
    cosine = (unit @ unit.T).clamp(-1.0, 1.0)
    return torch.arccos(cosine) / math.pi


def without_diagonal(distances: torch.Tensor) -> torch.Tensor:
    """D with +inf on its diagonal (j ≠ i in the minima below)."""
    n = distances.shape[0]
    return distances.masked_fill(torch.eye(n, dtype=torch.bool, device=distances.device), math.inf)


def effectiveness(sets: torch.Tensor, distances: torch.Tensor, chunk_elements: int = 1 << 24,
                  off_diagonal: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_{i∈S} min_{j∈S, j≠i} D_ij for each row of ``sets`` (B×N bool) → (B,) float64
    (``off_diagonal``: :func:`without_diagonal` of the distances, when already made)."""
    n = distances.shape[0]
    off_diagonal = without_diagonal(distances) if off_diagonal is None else off_diagonal
    rows = max(1, chunk_elements // max(1, n * n))
    out = []
    for chunk in sets.split(rows):
        pair = chunk[:, :, None] & chunk[:, None, :]
        nearest = torch.where(pair, off_diagonal, math.inf).min(dim=-1).values
        keep = chunk & torch.isfinite(nearest)
        out.append(torch.where(keep, nearest, 0.0).sum(dim=-1))
    return torch.cat(out) if out else distances.new_zeros(0)


def effectiveness_added(chosen: torch.Tensor, added: torch.Tensor, off_diagonal: torch.Tensor) -> torch.Tensor:
    """:func:`effectiveness` of the sets chosen ∪ {added[b]} (``chosen`` N bool, ``added`` B region
    ids not in it, ``off_diagonal`` from :func:`without_diagonal`) in O(B·N) instead of O(B·N²):
    the same numbers bit for bit (the minima are exact and each row sums the same N values)."""
    nearest_in_chosen = torch.where(chosen[None], off_diagonal, math.inf).min(dim=-1).values  # N
    # i ∈ S: min(its nearest in S, D_ic); c itself: its nearest in S (D_cc is +inf).
    nearest = torch.minimum(nearest_in_chosen[None], off_diagonal.index_select(1, added).T).contiguous()
    members = chosen.repeat(len(added), 1)
    members[torch.arange(len(added), device=added.device), added] = True
    keep = members & torch.isfinite(nearest)
    return torch.where(keep, nearest, 0.0).sum(dim=-1)


@dataclass
class Terms:
    """The four terms for B sets, each a (B,) float64 tensor (effectiveness None if not computed)."""

    consistency: torch.Tensor
    collaboration: torch.Tensor
    confidence: torch.Tensor
    effectiveness: torch.Tensor | None

    def objective(self, weights: Weights) -> torch.Tensor:
        score = (
            weights.confidence * self.confidence
            + weights.consistency * self.consistency
            + weights.collaboration * self.collaboration
        )
        if self.effectiveness is not None:
            score = score + weights.effectiveness * self.effectiveness
        return score

    def select(self, index: torch.Tensor | int) -> "Terms":
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return Terms(pick(self.consistency), pick(self.collaboration), pick(self.confidence), pick(self.effectiveness))
