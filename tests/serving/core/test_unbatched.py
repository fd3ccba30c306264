"""Models without a batch axis (``max_batch_size: 0``): rows run one at a time, as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.core.config import ConfigError, load_config
from serving.core.runtime import OnnxModel
from tests.models import write_model_folder


def _unbatched(tmp_path: Path) -> OnnxModel:
    folder = write_model_folder(
        tmp_path, "scale", width=3, factor=2.0, batching={"max_batch_size": 0}
    )
    return OnnxModel(folder / "1" / "model.onnx", load_config(folder / "config.yaml"))


def test_each_row_runs_whole_and_a_missing_leading_axis_is_added(tmp_path: Path) -> None:
    model = _unbatched(tmp_path)
    model.warmup()
    assert model.warmup_shapes == {"y": [64, 3]}  # no batch axis dropped; dynamic axes: 64
    two = np.arange(6, dtype=np.float32).reshape(2, 3)
    one = np.ones(3, dtype=np.float32)  # rank 1 for a [-1, 3] input: given a leading axis
    out = model.run_rows([{"x": two}, {"x": one}])
    np.testing.assert_array_equal(out[0]["y"], two * 2)
    np.testing.assert_array_equal(out[1]["y"], [[2, 2, 2]])


def test_preferred_sizes_cannot_exceed_one_row_per_run(tmp_path: Path) -> None:
    folder = write_model_folder(
        tmp_path, "scale", batching={"max_batch_size": 0, "preferred_batch_sizes": [2]}
    )
    with pytest.raises(ConfigError, match="preferred_batch_sizes"):
        load_config(folder / "config.yaml")
