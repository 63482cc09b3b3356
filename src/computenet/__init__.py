"""computenet: place AI work across a computing-power network for lower cost and carbon,
under deadlines, latency targets and data rules."""

__version__ = "0.1.0"
