"""The unified person view: one document for a social worker, from what the gate released."""

from bridge.view.document import SECTION_OF, build_view, summarise

__all__ = ["SECTION_OF", "build_view", "summarise"]
