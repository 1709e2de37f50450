"""Did-you-mean hints for misspelt field and agent names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6
MIN_PART = 4  # shortest word (or name) considered as part of a longer one


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word` (ignoring case), or None when none is close enough."""
    by_folded: dict[str, str] = {}
    for candidate in candidates:
        by_folded.setdefault(candidate.casefold(), candidate)
    if not word or not by_folded:
        return None
    folded = word.casefold()
    matches = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=CUTOFF)
    if not matches and len(folded) >= MIN_PART:
        # A word that is a part of a longer name ("hosts" for "allowedHosts") is a near miss too.
        matches = sorted(
            (c for c in by_folded if folded in c or (len(c) >= MIN_PART and c in folded)),
            key=lambda c: (-difflib.SequenceMatcher(None, folded, c).ratio(), c),
        )
    return by_folded[matches[0]] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest candidate, or "" when there is none."""
    match = closest(word, candidates)
    return f' (did you mean "{match}"?)' if match is not None else ""
