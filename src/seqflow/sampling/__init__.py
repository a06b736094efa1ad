"""Sampling: ODE solvers on the sphere, classifier-free guidance and decoding."""

from seqflow.sampling.library import generate_libraries, guided_set_field
from seqflow.sampling.sampler import DECODERS, decode, generate, guided_field
from seqflow.sampling.solvers import SOLVERS, integrate

__all__ = [
    "DECODERS",
    "SOLVERS",
    "decode",
    "generate",
    "generate_libraries",
    "guided_field",
    "guided_set_field",
    "integrate",
]
