"""Wall-clock durations as users write them (``90s``, ``20m``, ``4h``, ``1h30m``); a leaf, like
``config``, which checks ``train.time_budget`` with it."""

from __future__ import annotations

import math
import re

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = re.compile(
    rf"(?P<bare>{_NUMBER})|" + "".join(rf"(?:(?P<{u}>{_NUMBER}){u})?" for u in _UNITS)
)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: numbers with units ``d``, ``h``, ``m``, ``s`` in that order, each at
    most once (``1h30m``, ``90s``, ``1.5h``), or a bare number of seconds (``5400``).

    Raises:
        ValueError: anything else (``20x``, ``-5m``, ``30m1h``, an empty string), and a total
            of zero.
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 20m, 4h or 1h30m")
    if match["bare"] is not None:
        seconds = float(match["bare"])
    else:
        seconds = sum(float(match[u]) * scale for u, scale in _UNITS.items() if match[u])
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds
