"""Source system adapters: fetch and parse only, never business rules (see DESIGN.md)."""
