"""One module per placement policy; all share ``computenet.engine.problem`` (constraints and
objective) and ``base`` (order, tie-break, placement and explanations)."""
