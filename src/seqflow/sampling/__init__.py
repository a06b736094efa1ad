"""Sampling: ODE solvers on the sphere, classifier-free guidance and decoding."""

from seqflow.sampling.sampler import DECODERS, decode, generate, guided_field
from seqflow.sampling.solvers import SOLVERS, integrate

__all__ = ["DECODERS", "SOLVERS", "decode", "generate", "guided_field", "integrate"]
