"""The easy-VQA data set (PyPI ``easy-vqa``): questions, answers, images and question types.

Each image holds one coloured shape; questions ask its shape, its colour, or yes/no about
either (sometimes negated). We derive the question type from the answer set the question draws
on, which is how easy-VQA's generator builds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SHAPES = frozenset({"circle", "rectangle", "triangle"})
YES_NO = frozenset({"yes", "no"})


@dataclass(frozen=True)
class Split:
    questions: list[str]
    answers: list[str]
    image_ids: list[int]
    image_paths: dict[int, Path]


def question_type(question: str, answer: str) -> str:
    """``shape``, ``color``, ``yes/no`` or ``yes/no (negated)``."""
    if answer in YES_NO:
        return "yes/no (negated)" if " not " in f" {question.lower()} " else "yes/no"
    return "shape" if answer in SHAPES else "color"


def load_split(name: str) -> Split:
    import easy_vqa

    if name == "train":
        questions, answers, ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    elif name == "test":
        questions, answers, ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    else:
        raise ValueError(f"easy-VQA has splits train and test, not {name!r}")
    return Split(list(questions), list(answers), list(ids), {i: Path(p) for i, p in paths.items()})


def answer_list() -> list[str]:
    import easy_vqa

    return list(easy_vqa.get_answers())
