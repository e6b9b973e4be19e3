"""The in-model policy protocol: an adapter asks a policy, layer by layer, which signals it
needs and then for a :class:`~zoo_plugins.reducers.types.Plan`.

Example (a policy that never reduces):
    >>> class Nothing(InModelPolicy):
    ...     def needs(self, layer):
    ...         return frozenset()
    >>> Nothing().plan(0, None) is None
    True
"""

from __future__ import annotations

from ..types import Plan, Signals

__all__ = ["ATTN", "CLS_ATTN", "KEYS", "InModelPolicy"]

KEYS = "keys"
CLS_ATTN = "cls_attn"
ATTN = "attn"


class InModelPolicy:
    """Decides, inside a transformer, what each block does to its tokens.

    Attributes:
        prop_attn: add ``log(size)`` to the attention logits (proportional attention).
        needs_cls: the policy reads the first token's attention (needs a class token).
    """

    prop_attn: bool = False
    needs_cls: bool = False
    pre_attention: bool = False  # plan before attention from the full map (MCTF one-step-ahead)

    def bind(self, num_layers: int) -> None:
        """Resolve the schedule for a model with ``num_layers`` blocks (called by ``apply``)."""

    def needs(self, layer: int) -> frozenset[str]:
        """Signals the policy reads at ``layer`` (subset of {"keys", "cls_attn"}); an empty set
        with ``active(layer)`` False lets the adapter skip all extra work."""
        return frozenset()

    def active(self, layer: int) -> bool:
        """Whether the policy may reduce at ``layer``."""
        return bool(self.needs(layer))

    def plan(self, layer: int, signals: Signals) -> Plan | None:
        """The reduction at ``layer``, or None to leave the tokens as they are."""
        return None
