"""One pure renderer per operand state (reference §2.1): policy + cluster facts → the objects
the operator applies. ``render_all`` walks the states in upstream's fixed order."""

from gpu_operator.operator.render.common import HASH_ANNOTATION, RenderContext, Rendered
from gpu_operator.operator.render.states import STATES, State, StateResult, render_all

__all__ = [
    "HASH_ANNOTATION",
    "STATES",
    "RenderContext",
    "Rendered",
    "State",
    "StateResult",
    "render_all",
]
