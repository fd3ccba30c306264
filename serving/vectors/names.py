"""Names people give things (gallery identities, item ids): one canonical form, one allowed set.

A name is normalised with Unicode NFKC (so full-width letters and their ASCII forms are one
identity, and the ligature U+FB01 is "fi") and whitespace runs collapse to one space. What is
then allowed: 1-128 characters of letters and combining marks (any script), digits, spaces, and
``. ' - _ @``; the first character a letter or digit; and letters from one script only (Han,
Hiragana, Katakana and Hangul count as one), so "Ann" spelt with a Cyrillic capital A (U+0410)
is refused instead of becoming a second "Ann". Invisible characters (zero-width joiners, bidi
controls) are not in the set.
"""

from __future__ import annotations

import re
import unicodedata

from serving.errors import BadRequest

MAX_LENGTH = 128
PUNCTUATION = set(".'-_@ ")
EAST_ASIAN = {"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "KATAKANA-HIRAGANA"}
ALLOWED = (
    "1-128 letters or marks of one script, digits, spaces and . ' - _ @, "
    "starting with a letter or digit (NFKC-normalised)"
)


def _script(ch: str) -> str:
    word = unicodedata.name(ch, "UNKNOWN").split()[0]
    return "CJK" if word in EAST_ASIAN else word


def normalise_name(raw: str, what: str = "identity") -> str:
    """The canonical form of ``raw``, or a 400 saying what is allowed."""
    name = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", raw)).strip()

    def refuse(why: str) -> BadRequest:
        return BadRequest(f"{what} {raw!r} {why}; allowed: {ALLOWED}", code=f"invalid_{what}")

    if not 1 <= len(name) <= MAX_LENGTH:
        raise refuse("has the wrong length")
    scripts = set()
    for ch in name:
        category = unicodedata.category(ch)
        if category[0] == "L":
            scripts.add(_script(ch))
        elif category[0] != "M" and category != "Nd" and ch not in PUNCTUATION:
            raise refuse(f"contains {ch!r} (U+{ord(ch):04X})")
    if not unicodedata.category(name[0]).startswith(("L", "N")):
        raise refuse("must start with a letter or digit")
    if len(scripts) > 1:
        raise refuse(f"mixes scripts ({', '.join(sorted(scripts))})")
    return name
