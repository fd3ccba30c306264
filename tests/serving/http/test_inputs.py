"""Reading task requests: the key count that guards the JSON parser."""

from __future__ import annotations

import itertools
import random

import orjson

from serving.http.inputs import _KEY_END, _count_keys


def _regex_count(body: bytes, limit: int) -> int:
    return sum(1 for _ in itertools.islice(_KEY_END.finditer(body), limit + 1))


def test_key_walk_counts_what_the_regex_counts() -> None:
    """The quote walk (fast on base64) agrees with the plain regex scan on every body shape,
    including escaped quotes, colons inside strings, garbage and bodies past the walk's bound."""
    rng = random.Random(0)
    bodies = [
        b"{}",
        b'{"a" :1, "b":"x\\"y", "c": ["d", "e"]}',
        orjson.dumps({"q": 'he said "hi": ok', "images": ["QUJD" * 50_000]}),
        orjson.dumps({f"k{i}": 1 for i in range(300)}),
        orjson.dumps({"images": ["a"] * 5000, **{f"k{i}": 1 for i in range(300)}}),
    ]
    bodies += [
        bytes(rng.choice(b'"a: \\{}') for _ in range(rng.randint(0, 3000))) for _ in range(200)
    ]
    for body in bodies:
        for limit in (1, 5, 256):
            assert _count_keys(body, limit) == _regex_count(body, limit)
