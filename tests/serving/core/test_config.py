"""Config validation: errors name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serving.core.config import ConfigError, load_config
from tests.conftest import MODEL_STORE
from tests.models import write_model_folder


def broken(tmp_path: Path, **changes: object) -> Path:
    folder = write_model_folder(tmp_path, "m")
    doc = yaml.safe_load((folder / "config.yaml").read_text())
    doc.update(changes)
    (folder / "config.yaml").write_text(yaml.safe_dump(doc))
    return folder / "config.yaml"


def test_shipped_configs_validate() -> None:
    for path in sorted(MODEL_STORE.glob("*/config.yaml")):
        assert load_config(path).name == path.parent.name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": "juggling"}, "task: Input should be"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"inputs": [{"name": "x", "datatype": "FP33", "shape": [-1, 4]}]}, "inputs.0.datatype"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 0]}]}, "inputs.0.shape"),
        (
            {"batching": {"max_batch_size": 4, "preferred_batch_sizes": [8]}},
            "preferred_batch_sizes",
        ),
        ({"batching": {"max_batch_size": -1}}, "batching.max_batch_size"),
        ({"preprocess": {"input": "nope"}}, "preprocess.input 'nope' is not among inputs"),
        ({"embedding": {"output": "nope"}}, "embedding.output 'nope' is not among outputs"),
        (
            {"explain": {"feature_map_output": "nope", "class_weights": "w.npy"}},
            "explain.feature_map_output 'nope' is not among outputs",
        ),
        (
            {"explain": {"feature_map_output": "y", "class_weights": "w.npy", "box_threshold": 1}},
            "explain.box_threshold",
        ),
        ({"card": {"summary": "s"}}, "card.source: Field required"),
        ({"name": "other"}, "differs from folder"),
        (
            {"preprocess": {"input": "x", "resize": {"mode": "zoom", "size": 3}}},
            "preprocess.resize",
        ),
        (
            {"text": {"input": "tokens", "vocabulary": "v.txt", "max_length": 8}},
            "text inputs ['tokens'] are not among inputs",
        ),
        ({"text": {"input": "x", "vocabulary": "v.txt", "max_length": 0}}, "text.max_length"),
        (
            {
                "postprocess": {
                    "kind": "sequence_decoding",
                    "decoder_model": "d",
                    "vocabulary": "v.txt",
                    "state": {"h": "h_next"},
                    "default_beam_size": 9,
                    "max_beam_size": 8,
                }
            },
            "default_beam_size exceeds max_beam_size",
        ),
    ],
)
def test_invalid_configs_name_the_field(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(broken(tmp_path, **changes))
    assert message in str(err.value) and "config.yaml" in str(err.value)


def test_unreadable_yaml(tmp_path: Path) -> None:
    path = tmp_path / "m" / "config.yaml"
    path.parent.mkdir()
    path.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(path)
