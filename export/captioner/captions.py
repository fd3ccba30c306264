"""Reference captions written from scene graphs (``export.scenes``), several per image.

Captions name every object by colour and class, count repeats ("two red stars"), and place
objects by position or by relation to each other ("a blue ring to the left of a green cross").
Each reference comes from a different template, so a model is scored against varied wording.
:func:`mention_counts` checks the other direction: which objects a generated caption names.
"""

from __future__ import annotations

import itertools

import numpy as np

from export.scenes.graph import Scene, SceneObject
from serving.text import tokenize

NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x")) else "s")


def name(obj: SceneObject) -> str:
    """``a red star`` / ``an orange ring``."""
    return f"{_article(obj.colour)} {obj.colour} {obj.category}"


def position(obj: SceneObject, scene: Scene) -> str:
    """Where in the picture, in thirds: ``in the top left corner`` ... ``in the middle``."""
    col = min(2, int(3 * obj.center[0] / scene.width))
    row = min(2, int(3 * obj.center[1] / scene.height))
    vertical, horizontal = ("top", "", "bottom")[row], ("left", "", "right")[col]
    if vertical and horizontal:
        return f"in the {vertical} {horizontal} corner"
    if vertical:
        return f"at the {vertical}"
    return f"on the {horizontal}" if horizontal else "in the middle"


def relation(a: SceneObject, b: SceneObject) -> str | None:
    """How ``a`` lies relative to ``b`` along the axis that separates them more, if clearly."""
    dx, dy = b.center[0] - a.center[0], b.center[1] - a.center[1]
    gap = (a.size + b.size) / 4
    if abs(dx) >= abs(dy) and abs(dx) > gap:
        return "to the left of" if dx > 0 else "to the right of"
    if abs(dy) > abs(dx) and abs(dy) > gap:
        return "above" if dy > 0 else "below"
    return None


def grouped(objects: list[SceneObject]) -> list[str]:
    """Object phrases left to right, identical colour+class merged into a count."""
    order: dict[tuple[str, str], int] = {}
    for o in sorted(objects, key=lambda o: o.center[0]):
        key = (o.colour, o.category)
        order[key] = order.get(key, 0) + 1
    return [
        f"{_article(colour)} {colour} {category}"
        if n == 1
        else f"{NUMBERS[n]} {colour} {_plural(category)}"
        for (colour, category), n in order.items()
    ]


def _listing(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def candidates(scene: Scene) -> list[str]:
    """Every caption the templates can write for ``scene`` (at least five); each one names every
    object, so no reference is a generic caption that fits any scene."""
    objs = sorted(scene.objects, key=lambda o: o.center[0])
    phrases = grouped(objs)
    n = len(objs)
    listing = _listing(phrases)
    out = [
        listing,
        f"a picture of {listing}",
        f"the picture shows {listing}",
        f"an image with {listing}",
        f"{listing} on a photo",
    ]
    if n == 1:
        o = objs[0]
        out += [
            f"{name(o)} {position(o, scene)}",
            f"there is {name(o)} {position(o, scene)}",
            f"{position(o, scene)} there is {name(o)}",
        ]
    elif n == 2:
        a, b = objs
        rel = relation(a, b)
        if rel is not None:
            back = relation(b, a)
            out += [
                f"{name(a)} {rel} {name(b)}",
                f"{name(b)} {back} {name(a)}",
                f"there is {name(a)} {rel} {name(b)}",
            ]
        out.append(f"{name(a)} and {name(b)}")
    else:
        out.append(f"{listing} from left to right")
    if len(phrases) < n:
        out.append(f"{listing} in the picture")
    return list(dict.fromkeys(out))


def references(scene: Scene, count: int = 5, seed: int = 0) -> list[str]:
    """``count`` distinct captions (fewer if the templates give fewer), fixed per scene."""
    pool = candidates(scene)
    rng = np.random.default_rng((seed, scene.image_id, len(scene.objects)))
    picked = rng.permutation(len(pool))[:count]
    return [pool[i] for i in sorted(picked)]


def mention_counts(scenes: list[Scene], captions: list[str]) -> dict[str, int]:
    """Objects in the scenes, and how many a caption names by class and by colour + class."""
    named = coloured = total = 0
    for scene, caption in zip(scenes, captions, strict=True):
        words = tokenize(caption)
        bigrams = set(itertools.pairwise(words))
        for o in scene.objects:
            total += 1
            plural = _plural(o.category)
            named += o.category in words or plural in words
            coloured += (o.colour, o.category) in bigrams or (o.colour, plural) in bigrams
    return {"objects": total, "class_named": named, "colour_and_class_named": coloured}


def mention_rates(scenes: list[Scene], captions: list[str]) -> dict[str, float]:
    """How often (%) a caption names an object's class, and with its colour before it."""
    c = mention_counts(scenes, captions)
    return {
        "object_class_named": round(100 * c["class_named"] / c["objects"], 2),
        "object_colour_and_class_named": round(100 * c["colour_and_class_named"] / c["objects"], 2),
    }
