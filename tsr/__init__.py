"""tsr: run Stable Diffusion on your own GPU box from a terminal."""

__version__ = "0.1.0"
