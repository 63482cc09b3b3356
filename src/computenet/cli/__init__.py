"""The ``computenet`` command line. One module per command; ``main`` registers them."""
