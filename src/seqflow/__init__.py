"""seqflow: Fisher-Flow generative models for discrete sequences (DNA, RNA, protein, any alphabet).

Flow matching on the positive orthant of the hypersphere (Fisher-Rao geometry; Davis et al. 2024,
arXiv 2405.14664) with minibatch optimal-transport coupling (Tong et al. 2024, OT-CFM).
"""

from seqflow._version import __version__

__all__ = ["__version__"]
