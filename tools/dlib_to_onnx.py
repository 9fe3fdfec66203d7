#!/usr/bin/env python3
"""Convert dlib's published face models into the Renzheng ONNX model pack.

Usage:
    python dlib_to_onnx.py --models-dir DIR --out PACK_DIR [--self-check]

DIR must hold dlib's ``mmod_human_face_detector.dat``,
``shape_predictor_5_face_landmarks.dat`` and
``dlib_face_recognition_resnet_model_v1.dat``.  PACK_DIR receives:

``detector.onnx``
    The MMOD CNN as a fully convolutional graph (opset 17).  Input ``image``:
    float32 [1,3,H,W] (H, W symbolic), planar R,G,B, already normalised as
    (pixel - avg)/256 and already tiled into dlib's image pyramid.  Output
    ``scores``: float32 [1,1,H',W'], the raw score map of the last convolution.
    The batch-norm layers are folded into the preceding convolutions.

``recognition.onnx``
    The 29-convolution ResNet.  Input ``chip``: float32 [N,3,150,150] (N
    symbolic), normalised like the detector input.  Output ``embedding``:
    float32 [N,128] (not L2-normalised, exactly what dlib returns).

``landmarks.rzsp``
    The 5-point ensemble-of-regression-trees predictor, little endian::

        bytes "RZSP"; u32 version = 1
        u32 num_landmarks; u32 num_cascades; u32 trees_per_cascade;
        u32 num_splits_per_tree; u32 num_leaves_per_tree;
        u32 feature_pixels_per_cascade
        f32 x (2*num_landmarks)   initial shape x0,y0,x1,y1,... (box-normalised)
        per cascade:
            u32 x feature_pixels          anchor landmark index of each pixel
            f32 x (2*feature_pixels)      offsets dx0,dy0,dx1,dy1,...
            per tree:
                num_splits x (u32 idx1, u32 idx2, f32 thresh)
                num_leaves x (f32 x 2*num_landmarks)   leaf deltas x0,y0,...

``convert_report.json``
    Facts the engine needs (input averages, pyramid and window geometry, NMS
    thresholds, ...), read from the model files wherever dlib stores them.

dlib's serialization, as far as these files use it (see dlib/serialize.h):

* Integers: one control byte (bit 0x80 = negative, low 4 bits = number of
  bytes n, bits 0x70 zero), then |value| in n little-endian bytes.
* bool: the ASCII byte '0' or '1'.  std::string: length, then the bytes.
  std::vector: length, then the elements.
* float/double scalars: an int64 mantissa FIRST, then an int16 exponent;
  value = mantissa * 2**exponent, exponents 32000/32001/32002 mean
  +inf/-inf/NaN.
* dlib::matrix: -rows, -cols (negated), then the elements row-major, each a
  scalar as above.  dlib::vector<float,2>: x then y.
* DNN tensors (resizable_tensor): int version 2, num_samples, k, nr, nc, then
  raw little-endian float32 in NCHW order.  alias_tensor: version 1 and the
  four dimensions only (they describe slices of a layer's ``params`` tensor).
* A network is written outermost layer first: add_loss_layer writes 1, the
  loss details, then its subnet; add_layer writes its version (2; 2 or 3 for
  the layer sitting on the input layer), its subnet, its own details, three
  bools and three (usually empty) tensors; add_tag_layer / add_skip_layer
  write 1 and their subnet.  Tag ids are not stored, so the wiring is taken
  from the C++ network types of dlib's examples (dnn_mmod_face_detection_ex
  and dnn_face_recognition_ex) and re-created here as layer lists; the file
  is checked against them (layer kinds, filter counts, kernel sizes,
  strides, paddings, and that the stream ends exactly after the net).
* add_prev adds two tensors of different shapes by zero-padding both to the
  element-wise larger shape, top-left aligned.

Dependencies: numpy and onnx for the conversion; onnxruntime for --self-check
only.  The script is deterministic: the same inputs give byte-identical
outputs.  Exit status is non-zero on any inconsistency.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np

CONVERTER_VERSION = 1
OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17

DETECTOR_FILE = "mmod_human_face_detector.dat"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"

RZSP_VERSION = 1
# The engine aligns faces from the 5-point model (eye corners, nose); the
# 68-point model is excluded by its licence anyway.
EXPECTED_LANDMARKS = 5

# dlib's DNN input layers compute (pixel - avg) / 256; the 256 is a constant in
# dlib/dnn/input.h (not stored in the files).
INPUT_SCALE = 256.0
# pyramid_down<6> is part of the detector's C++ type (input_rgb_image_pyramid<
# pyramid_down<6>>), not of the file.
PYRAMID_DOWNSAMPLE = 6
# get_face_chip_details(shape, 150, 0.25) in dlib's face recognition example
# and in face_recognition; the chip padding is not stored in any model file.
CHIP_PADDING = 0.25
# dlib's documented same-person decision threshold on the Euclidean distance
# between two descriptors (dnn_face_recognition_ex.cpp); not stored either.
SAME_PERSON_DISTANCE = 0.6


class ConversionError(Exception):
    """Any inconsistency in the inputs; reported and turned into exit code 1."""


def log(msg: str) -> None:
    print(f"[dlib_to_onnx] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# dlib stream reader
# ---------------------------------------------------------------------------


class DlibStream:
    """Reads dlib's serialization format from an in-memory byte string."""

    def __init__(self, data: bytes, name: str):
        self.data = data
        self.name = name
        self.pos = 0

    def fail(self, msg: str):
        raise ConversionError(f"{self.name}: at byte {self.pos}: {msg}")

    def _take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            self.fail(f"unexpected end of file while reading {what}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def read_int(self, what: str = "integer") -> int:
        if self.pos >= len(self.data):
            self.fail(f"unexpected end of file while reading {what}")
        ctrl = self.data[self.pos]
        n = ctrl & 0x0F
        if ctrl & 0x70 or n == 0 or n > 8:
            self.fail(f"bad integer control byte 0x{ctrl:02x} for {what}")
        if self.pos + 1 + n > len(self.data):
            self.fail(f"unexpected end of file while reading {what}")
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if ctrl & 0x80 else value

    def read_uint(self, what: str = "unsigned integer") -> int:
        start = self.pos
        v = self.read_int(what)
        if v < 0:
            self.pos = start
            self.fail(f"negative value {v} for {what}")
        return v

    def expect_int(self, expected, what: str) -> int:
        start = self.pos
        v = self.read_int(what)
        allowed = expected if isinstance(expected, (tuple, list, set)) else (expected,)
        if v not in allowed:
            self.pos = start
            self.fail(f"expected {what} in {sorted(allowed)}, found {v}")
        return v

    def read_bool(self, what: str = "bool") -> bool:
        b = self._take(1, what)
        if b == b"1":
            return True
        if b == b"0":
            return False
        self.pos -= 1
        self.fail(f"bad bool byte {b!r} for {what}")

    def read_string(self, what: str = "string") -> str:
        n = self.read_uint(f"length of {what}")
        if n > 4096:
            self.fail(f"implausible length {n} for {what}")
        return self._take(n, what).decode("utf-8", errors="replace")

    def expect_string(self, allowed, what: str) -> str:
        start = self.pos
        s = self.read_string(what)
        if s not in allowed:
            self.pos = start
            self.fail(f"expected {what} to be one of {list(allowed)}, found {s!r}")
        return s

    def read_float(self, what: str = "float") -> float:
        """A float/double scalar: int64 mantissa, then int16 exponent."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            self.fail(f"{what} uses dlib's old ASCII float format (unsupported)")
        m = self.read_int(f"mantissa of {what}")
        e = self.read_int(f"exponent of {what}")
        if e == 32000:
            return math.inf
        if e == 32001:
            return -math.inf
        if e == 32002:
            return math.nan
        return math.ldexp(m, e)

    def read_matrix(self, what: str = "matrix") -> np.ndarray:
        nr = self.read_int(f"rows of {what}")
        nc = self.read_int(f"cols of {what}")
        if nr < 0 or nc < 0:  # the current format negates both
            nr, nc = -nr, -nc
        if nr < 0 or nc < 0 or nr * nc > 10_000_000:
            self.fail(f"bad dimensions {nr}x{nc} for {what}")
        vals = [self.read_float(what) for _ in range(nr * nc)]
        return np.array(vals, dtype=np.float64).reshape(nr, nc)

    def read_tensor(self, what: str = "tensor") -> np.ndarray:
        """A resizable_tensor: version 2, n, k, nr, nc, raw float32 (LE)."""
        self.expect_int(2, f"tensor version of {what}")
        dims = tuple(self.read_uint(f"dimension of {what}") for _ in range(4))
        count = int(np.prod(dims, dtype=np.int64))
        raw = self._take(4 * count, f"data of {what}")
        return np.frombuffer(raw, dtype="<f4").reshape(dims).astype(np.float32)

    def read_alias_tensor(self, what: str = "alias tensor") -> tuple:
        self.expect_int(1, f"alias_tensor version of {what}")
        return tuple(self.read_uint(f"dimension of {what}") for _ in range(4))

    def expect_end(self) -> None:
        if self.pos != len(self.data):
            self.fail(f"{len(self.data) - self.pos} unexpected trailing bytes")


def read_lr_multipliers(s: DlibStream, what: str) -> None:
    """learning_rate, weight_decay, bias_learning_rate, bias_weight_decay."""
    for i in range(4):
        s.read_float(f"{what} training multiplier {i}")


# ---------------------------------------------------------------------------
# Network specifications (re-creating the C++ template types)
# ---------------------------------------------------------------------------
# A network is a list of dicts, OUTERMOST first (the order of dlib's C++ type
# and of the stream).  Kinds: loss_mmod, loss_metric, con, affine, relu,
# max_pool, avg_pool, fc, add_prev, tag, skip, input_pyramid, input_sized.


def L(kind: str, **expect) -> dict:
    return {"kind": kind, "expect": expect}


def s_con(n: int, k: int, stride: int) -> list:
    return [L("con", num_filters=n, nr=k, nc=k, stride=(stride, stride))]


def detector_spec() -> list:
    """net_type of dnn_mmod_face_detection_ex.cpp."""
    def con5d(n, sub):
        return s_con(n, 5, 2) + sub

    def con5(n, sub):
        return s_con(n, 5, 1) + sub

    def ra(sub):  # relu<affine<...>>
        return [L("relu"), L("affine")] + sub

    def rcon5(sub):
        return ra(con5(45, sub))

    downsampler = ra(con5d(32, ra(con5d(32, ra(con5d(16, [L("input_pyramid")]))))))
    return [L("loss_mmod")] + s_con(1, 9, 1) + rcon5(rcon5(rcon5(downsampler)))


def recognition_spec() -> list:
    """anet_type of dnn_face_recognition_ex.cpp."""
    def block(n, stride, sub):  # BN<con<N,3,3,1,1,relu<BN<con<N,3,3,s,s,SUB>>>>>
        return [L("affine")] + s_con(n, 3, 1) + [L("relu"), L("affine")] + s_con(n, 3, stride) + sub

    def ares(n, sub):  # relu<add_prev1<block<N,affine,1,tag1<SUB>>>>
        return [L("relu"), L("add_prev", tag=1)] + block(n, 1, [L("tag", id=1)] + sub)

    def ares_down(n, sub):  # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUB>>>>>>>
        return ([L("relu"), L("add_prev", tag=2),
                 L("avg_pool", nr=2, nc=2, stride=(2, 2)), L("skip", id=1), L("tag", id=2)]
                + block(n, 2, [L("tag", id=1)] + sub))

    def alevel0(sub):
        return ares_down(256, sub)

    def alevel1(sub):
        return ares(256, ares(256, ares_down(256, sub)))

    def alevel2(sub):
        return ares(128, ares(128, ares_down(128, sub)))

    def alevel3(sub):
        return ares(64, ares(64, ares(64, ares_down(64, sub))))

    def alevel4(sub):
        return ares(32, ares(32, ares(32, sub)))

    stem = ([L("max_pool", nr=3, nc=3, stride=(2, 2)), L("relu"), L("affine")]
            + s_con(32, 7, 2) + [L("input_sized", nr=150, nc=150)])
    return ([L("loss_metric"), L("fc", num_outputs=128, bias=False),
             L("avg_pool", nr=0, nc=0, stride=(1, 1))]
            + alevel0(alevel1(alevel2(alevel3(alevel4(stem))))))


# ---------------------------------------------------------------------------
# Layer detail parsers (one per dlib layer type)
# ---------------------------------------------------------------------------


def default_padding(k: int, stride: int) -> int:
    """dlib's default for con_/max_pool_/avg_pool_: stride != 1 ? 0 : k/2."""
    return 0 if stride != 1 else k // 2


def parse_con(s: DlibStream, spec: dict) -> dict:
    ver = s.expect_string(("con_4", "con_5", "con_6"), "con_ version")
    params = s.read_tensor("con_ params").reshape(-1)
    num_filters = s.read_int("con_ num_filters")
    nr = s.read_int("con_ nr")
    nc = s.read_int("con_ nc")
    stride = (s.read_int("con_ stride_y"), s.read_int("con_ stride_x"))
    pad = (s.read_int("con_ padding_y"), s.read_int("con_ padding_x"))
    fdims = s.read_alias_tensor("con_ filters")
    bdims = s.read_alias_tensor("con_ biases")
    read_lr_multipliers(s, "con_")
    use_bias = s.read_bool("con_ use_bias") if ver in ("con_5", "con_6") else True
    use_relu = s.read_bool("con_ use_relu") if ver == "con_6" else False

    e = spec["expect"]
    got = {"num_filters": num_filters, "nr": nr, "nc": nc, "stride": stride}
    for key, want in e.items():
        if got[key] != want:
            s.fail(f"con_: expected {key}={want}, file has {got[key]}")
    want_pad = (default_padding(nr, stride[0]), default_padding(nc, stride[1]))
    if pad != want_pad:
        s.fail(f"con_: padding {pad} differs from the C++ type's {want_pad}")
    if fdims[0] != num_filters or fdims[2:] != (nr, nc):
        s.fail(f"con_: filter tensor {fdims} inconsistent with {num_filters}x?x{nr}x{nc}")
    fsize = int(np.prod(fdims))
    bsize = num_filters if use_bias else 0
    if use_bias and int(np.prod(bdims)) != num_filters:
        s.fail(f"con_: bias tensor {bdims} does not hold {num_filters} values")
    if params.size != fsize + bsize:
        s.fail(f"con_: params has {params.size} floats, expected {fsize}+{bsize}")
    w = params[:fsize].reshape(fdims).copy()
    b = params[fsize:fsize + bsize].copy() if use_bias else np.zeros(num_filters, np.float32)
    return {"kind": "con", "version": ver, "W": w, "b": b, "stride": stride,
            "pad": pad, "use_relu": use_relu}


def parse_affine(s: DlibStream, spec: dict) -> dict:
    """affine_ (or a bn_con2 stored for it: dlib then converts with running stats)."""
    ver = s.expect_string(("affine_", "affine_2", "bn_con2"), "affine_ version")
    if ver == "bn_con2":
        return parse_bn_con_as_affine(s)
    params = s.read_tensor("affine_ params").reshape(-1)
    gdims = s.read_alias_tensor("affine_ gamma")
    bdims = s.read_alias_tensor("affine_ beta")
    mode = s.expect_int((0, 1), "affine_ mode")
    disabled = s.read_bool("affine_ disabled") if ver == "affine_2" else False
    if mode != 0:
        s.fail("affine_: FC_MODE affine where the network has a CONV_MODE layer")
    if disabled:
        return {"kind": "affine", "version": ver, "disabled": True}
    k = int(np.prod(gdims))
    if gdims != bdims or gdims != (1, k, 1, 1) or params.size != 2 * k:
        s.fail(f"affine_: inconsistent gamma {gdims} / beta {bdims} / params {params.size}")
    return {"kind": "affine", "version": ver, "disabled": False,
            "gamma": params[:k].astype(np.float64), "beta": params[k:].astype(np.float64)}


def parse_bn_con_as_affine(s: DlibStream) -> dict:
    """bn_con2 (version string already read), converted the way dlib's
    affine_(const bn_&) does it: g = gamma/sqrt(running_var + eps),
    b = beta - g*running_mean.  The batch means/invstds are training state."""
    params = s.read_tensor("bn_ params").reshape(-1)
    gdims = s.read_alias_tensor("bn_ gamma")
    bdims = s.read_alias_tensor("bn_ beta")
    s.read_tensor("bn_ means (batch statistics, unused)")
    s.read_tensor("bn_ invstds (batch statistics, unused)")
    rmean = s.read_tensor("bn_ running_means").reshape(-1).astype(np.float64)
    rvar = s.read_tensor("bn_ running_variances").reshape(-1).astype(np.float64)
    s.read_uint("bn_ num_updates")
    s.read_uint("bn_ running_stats_window_size")
    read_lr_multipliers(s, "bn_")
    eps = s.read_float("bn_ eps")
    k = int(np.prod(gdims))
    if gdims != bdims or gdims != (1, k, 1, 1) or params.size != 2 * k:
        s.fail(f"bn_con2: inconsistent gamma {gdims} / beta {bdims} / params {params.size}")
    if rmean.size != k or rvar.size != k:
        s.fail(f"bn_con2: running stats of size {rmean.size}/{rvar.size}, expected {k}")
    if np.any(rvar + eps <= 0):
        s.fail("bn_con2: non-positive running variance + eps")
    gamma = params[:k].astype(np.float64)
    beta = params[k:].astype(np.float64)
    g = gamma / np.sqrt(rvar + eps)
    return {"kind": "affine", "version": "bn_con2", "disabled": False, "eps": eps,
            "gamma": g, "beta": beta - g * rmean}


def parse_relu(s: DlibStream, spec: dict) -> dict:
    ver = s.expect_string(("relu_", "relu_2"), "relu_ version")
    disabled = s.read_bool("relu_ disabled") if ver == "relu_2" else False
    return {"kind": "relu", "version": ver, "disabled": disabled}


def _parse_pool(s: DlibStream, spec: dict, kind: str, version: str) -> dict:
    s.expect_string((version,), f"{kind}_ version")
    nr = s.read_int(f"{kind} nr")
    nc = s.read_int(f"{kind} nc")
    stride = (s.read_int(f"{kind} stride_y"), s.read_int(f"{kind} stride_x"))
    pad = (s.read_int(f"{kind} padding_y"), s.read_int(f"{kind} padding_x"))
    e = spec["expect"]
    if (nr, nc, stride) != (e["nr"], e["nc"], e["stride"]):
        s.fail(f"{kind}: file has {nr}x{nc}/{stride}, C++ type has {e['nr']}x{e['nc']}/{e['stride']}")
    want_pad = (0, 0) if nr == 0 else (default_padding(nr, stride[0]), default_padding(nc, stride[1]))
    if pad != want_pad:
        s.fail(f"{kind}: padding {pad} differs from the C++ type's {want_pad}")
    if kind == "avg_pool" and pad != (0, 0):
        s.fail("avg_pool with padding is not supported by this converter")
    return {"kind": kind, "nr": nr, "nc": nc, "stride": stride, "pad": pad}


def parse_max_pool(s, spec):
    return _parse_pool(s, spec, "max_pool", "max_pool_2")


def parse_avg_pool(s, spec):
    return _parse_pool(s, spec, "avg_pool", "avg_pool_2")


def parse_add_prev(s: DlibStream, spec: dict) -> dict:
    s.expect_string(("add_prev_",), "add_prev_ version")
    return {"kind": "add_prev", "tag": spec["expect"]["tag"]}


def parse_fc(s: DlibStream, spec: dict) -> dict:
    ver = s.expect_string(("fc_2", "fc_3"), "fc_ version")
    num_outputs = s.read_uint("fc_ num_outputs")
    num_inputs = s.read_uint("fc_ num_inputs")
    params = s.read_tensor("fc_ params").reshape(-1)
    wdims = s.read_alias_tensor("fc_ weights")
    s.read_alias_tensor("fc_ biases")  # a slice of params; its size follows from bias_mode
    bias_mode = s.expect_int((0, 1), "fc_ bias_mode")
    read_lr_multipliers(s, "fc_")
    use_bias = s.read_bool("fc_ use_bias") if ver == "fc_3" else True
    has_bias = bias_mode == 0 and use_bias
    e = spec["expect"]
    if num_outputs != e["num_outputs"] or (bias_mode == 0) != e["bias"]:
        s.fail(f"fc_: file has {num_outputs} outputs, bias_mode {bias_mode}; C++ type differs")
    if wdims[:2] != (num_inputs, num_outputs):
        s.fail(f"fc_: weight tensor {wdims} is not [{num_inputs},{num_outputs}]")
    nb = num_outputs if has_bias else 0
    if params.size != num_inputs * num_outputs + nb:
        s.fail(f"fc_: params has {params.size} floats, expected {num_inputs}*{num_outputs}+{nb}")
    w = params[:num_inputs * num_outputs].reshape(num_inputs, num_outputs).copy()
    b = params[num_inputs * num_outputs:].copy() if has_bias else None
    return {"kind": "fc", "W": w, "b": b, "num_inputs": num_inputs, "num_outputs": num_outputs}


def parse_input_sized(s: DlibStream, spec: dict) -> dict:
    s.expect_string(("input_rgb_image_sized",), "input layer version")
    avg = [s.read_float(f"avg_{c}") for c in ("red", "green", "blue")]
    nr = s.read_uint("input nr")
    nc = s.read_uint("input nc")
    e = spec["expect"]
    if (nr, nc) != (e["nr"], e["nc"]):
        s.fail(f"input_rgb_image_sized: file has {nr}x{nc}, expected {e['nr']}x{e['nc']}")
    return {"kind": "input_sized", "avg_rgb": avg, "nr": nr, "nc": nc}


def parse_input_pyramid(s: DlibStream, spec: dict) -> dict:
    ver = s.expect_string(("input_rgb_image_pyramid", "input_rgb_image_pyramid2"),
                          "input layer version")
    avg = [s.read_float(f"avg_{c}") for c in ("red", "green", "blue")]
    if ver == "input_rgb_image_pyramid2":
        padding = s.read_uint("pyramid_padding")
        outer = s.read_uint("pyramid_outer_padding")
        where = "stored in the file (input_rgb_image_pyramid2)"
    else:
        padding, outer = 10, 11
        where = "dlib's defaults for an 'input_rgb_image_pyramid' (v1) record, not stored"
    return {"kind": "input_pyramid", "version": ver, "avg_rgb": avg,
            "pyramid_padding": padding, "pyramid_outer_padding": outer, "padding_source": where}


def parse_loss_metric(s: DlibStream, spec: dict) -> dict:
    ver = s.expect_string(("loss_metric_", "loss_metric_2"), "loss version")
    if ver == "loss_metric_2":
        margin = s.read_float("loss_metric margin")
        dist = s.read_float("loss_metric dist_thresh")
    else:
        margin, dist = 0.1, 0.75  # hard-coded in dlib for the v1 record
    return {"kind": "loss_metric", "version": ver, "margin": margin, "dist_thresh": dist}


def parse_loss_mmod(s: DlibStream, spec: dict) -> dict:
    s.expect_string(("loss_mmod_",), "loss version")
    ver = s.expect_int((1, 2, 3, 4), "mmod_options version")
    windows = []
    if ver == 1:
        windows.append({"width": s.read_uint("window width"),
                        "height": s.read_uint("window height"), "label": ""})
    else:
        for _ in range(s.read_uint("number of detector windows")):
            wver = s.expect_int((1, 2), "detector_window_details version")
            w = s.read_uint("window width")
            h = s.read_uint("window height")
            label = s.read_string("window label") if wver == 2 else ""
            windows.append({"width": w, "height": h, "label": label})
    opts = {"mmod_options_version": ver, "detector_windows": windows}
    opts["loss_per_false_alarm"] = s.read_float("loss_per_false_alarm")
    opts["loss_per_missed_target"] = s.read_float("loss_per_missed_target")
    opts["truth_match_iou_threshold"] = s.read_float("truth_match_iou_threshold")
    opts["overlaps_nms"] = {"iou_thresh": s.read_float("nms iou_thresh"),
                            "percent_covered_thresh": s.read_float("nms percent_covered_thresh")}
    opts["overlaps_ignore"] = {"iou_thresh": s.read_float("ignore iou_thresh"),
                               "percent_covered_thresh": s.read_float("ignore percent_covered_thresh")}
    opts["assume_image_pyramid"] = True
    if ver >= 3:
        opts["assume_image_pyramid"] = bool(s.expect_int((0, 1), "assume_image_pyramid"))
    opts["use_bounding_box_regression"] = False
    if ver >= 4:
        opts["use_bounding_box_regression"] = s.read_bool("use_bounding_box_regression")
        opts["bbr_lambda"] = s.read_float("bbr_lambda")
    return {"kind": "loss_mmod", **opts}


LAYER_PARSERS = {
    "con": parse_con, "affine": parse_affine, "relu": parse_relu,
    "max_pool": parse_max_pool, "avg_pool": parse_avg_pool, "add_prev": parse_add_prev,
    "fc": parse_fc, "input_sized": parse_input_sized, "input_pyramid": parse_input_pyramid,
    "loss_metric": parse_loss_metric, "loss_mmod": parse_loss_mmod,
}


def parse_network(s: DlibStream, spec: list) -> tuple:
    """Parse a network following ``spec`` (outermost first).

    Returns (loss, input, layers) where ``layers`` runs from the layer just
    above the input to the outermost (evaluation order); tag/skip entries are
    kept as markers."""
    if spec[0]["kind"] not in ("loss_mmod", "loss_metric") or not spec[-1]["kind"].startswith("input"):
        raise ConversionError("internal: spec must start with a loss and end with an input")
    s.expect_int(1, "add_loss_layer version")
    loss = LAYER_PARSERS[spec[0]["kind"]](s, spec[0])

    middle = spec[1:-1]
    if middle[-1]["kind"] in ("tag", "skip"):
        raise ConversionError("internal: tag directly on the input layer is not supported")
    versions = []
    # Going down: each add_layer writes its version then its subnet first.
    for i, item in enumerate(middle):
        if item["kind"] in ("tag", "skip"):
            s.expect_int(1, f"add_{item['kind']}_layer version")
            versions.append(None)
        elif i == len(middle) - 1:
            versions.append(s.expect_int((2, 3), "add_layer (on input) version"))
        else:
            versions.append(s.expect_int((1, 2), "add_layer version"))
    inp = LAYER_PARSERS[spec[-1]["kind"]](s, spec[-1])

    # Coming back up: each layer's details, then its training state.
    layers = []
    for i in range(len(middle) - 1, -1, -1):
        item, ver = middle[i], versions[i]
        if item["kind"] in ("tag", "skip"):
            layers.append({"kind": item["kind"], "id": item["expect"]["id"]})
            continue
        layer = LAYER_PARSERS[item["kind"]](s, item)
        for flag in ("this_layer_setup_called", "gradient_input_is_stale",
                     "get_output_and_gradient_input_disabled"):
            s.read_bool(flag)
        s.read_tensor("x_grad")
        s.read_tensor("cached_output")
        if i == len(middle) - 1:
            s.read_tensor("grad_final")
            if ver == 3:
                s.read_uint("sample_expansion_factor")
        elif ver == 2:
            s.read_tensor("params_grad")
        layers.append(layer)
    s.expect_end()
    return loss, inp, layers


# ---------------------------------------------------------------------------
# Graph walking (shared by the numpy reference and the ONNX emitter)
# ---------------------------------------------------------------------------


def run_layers(layers: list, x, backend):
    """Evaluate ``layers`` (inner to outer) on ``x`` with ``backend``; tag /
    skip / add_prev are resolved here, each layer kind by the backend."""
    tags = {}
    for layer in layers:
        kind = layer["kind"]
        if kind == "tag":
            tags[layer["id"]] = x
        elif kind == "skip":
            x = tags[layer["id"]]
        elif kind == "add_prev":
            x = backend.add_prev(x, tags[layer["tag"]])
        else:
            x = getattr(backend, kind)(x, layer)
    return x


def fold_affines(layers: list) -> list:
    """Fold each affine into the convolution right below it (no tag between)."""
    out = []
    for layer in layers:
        if layer["kind"] == "affine":
            if layer.get("disabled"):
                continue
            prev = out[-1] if out else None
            if prev is None or prev["kind"] != "con" or prev["use_relu"]:
                raise ConversionError("affine layer not directly above a convolution")
            g, b = layer["gamma"], layer["beta"]
            w = prev["W"].astype(np.float64) * g[:, None, None, None]
            bias = prev["b"].astype(np.float64) * g + b
            out[-1] = dict(prev, W=w.astype(np.float32), b=bias.astype(np.float32), folded=True)
        else:
            out.append(layer)
    return out


def pool_out(n: int, k: int, stride: int, pad: int) -> int:
    return 1 + (n + 2 * pad - k) // stride


class NumpyReference:
    """Straightforward float64 forward pass of the parsed (unfolded) layers."""

    @staticmethod
    def _windows(x, kh, kw, sy, sx, py, px, fill=0.0):
        if py or px:
            x = np.pad(x, ((0, 0), (0, 0), (py, py), (px, px)), constant_values=fill)
        v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
        return v[:, :, ::sy, ::sx]  # N, C, OH, OW, kh, kw

    def con(self, x, layer):
        w = layer["W"].astype(np.float64)
        (sy, sx), (py, px) = layer["stride"], layer["pad"]
        v = self._windows(x, w.shape[2], w.shape[3], sy, sx, py, px)
        y = np.einsum("nchwij,ocij->nohw", v, w, optimize=True)
        y += layer["b"].astype(np.float64)[None, :, None, None]
        return np.maximum(y, 0) if layer["use_relu"] else y

    def affine(self, x, layer):
        if layer.get("disabled"):
            return x
        return x * layer["gamma"][None, :, None, None] + layer["beta"][None, :, None, None]

    def relu(self, x, layer):
        return x if layer["disabled"] else np.maximum(x, 0)

    def _pool(self, x, layer, reduce):
        if layer["nr"] == 0:  # pool "everything"
            return reduce(x, axis=(2, 3), keepdims=True)
        (sy, sx), (py, px) = layer["stride"], layer["pad"]
        v = self._windows(x, layer["nr"], layer["nc"], sy, sx, py, px, fill=-np.inf)
        oh = pool_out(x.shape[2], layer["nr"], sy, py)
        ow = pool_out(x.shape[3], layer["nc"], sx, px)
        return reduce(v[:, :, :oh, :ow], axis=(4, 5))

    def max_pool(self, x, layer):
        return self._pool(x, layer, np.max)

    def avg_pool(self, x, layer):
        return self._pool(x, layer, np.mean)

    def add_prev(self, a, b):
        shape = tuple(max(p, q) for p, q in zip(a.shape, b.shape))
        out = np.zeros(shape)
        out[tuple(slice(0, d) for d in a.shape)] += a
        out[tuple(slice(0, d) for d in b.shape)] += b
        return out

    def fc(self, x, layer):
        y = x.reshape(x.shape[0], -1) @ layer["W"].astype(np.float64)
        return y if layer["b"] is None else y + layer["b"]


class OnnxEmitter:
    """Emits ONNX nodes for the folded layers; values are (name, shape)."""

    def __init__(self, prefix: str):
        from onnx import helper, numpy_helper
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.prefix = prefix
        self.nodes, self.inits = [], []
        self.counts = {}

    def _name(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{self.prefix}{kind}{self.counts[kind]}"

    def _init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(arr, name))
        return name

    def _node(self, op, inputs, kind, **attrs):
        name = self._name(kind)
        self.nodes.append(self.helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def con(self, x, layer):
        name, shape = x
        w = layer["W"]
        (sy, sx), (py, px) = layer["stride"], layer["pad"]
        base = self._name("conv")
        wi = self._init(base + "_W", w.astype(np.float32))
        bi = self._init(base + "_B", layer["b"].astype(np.float32))
        self.nodes.append(self.helper.make_node(
            "Conv", [name, wi, bi], [base], name=base, kernel_shape=list(w.shape[2:]),
            strides=[sy, sx], pads=[py, px, py, px], dilations=[1, 1], group=1))
        oshape = (shape[0], w.shape[0],
                  None if shape[2] is None else pool_out(shape[2], w.shape[2], sy, py),
                  None if shape[3] is None else pool_out(shape[3], w.shape[3], sx, px))
        out = (base, oshape)
        return self.relu(out, {"disabled": False}) if layer["use_relu"] else out

    def affine(self, x, layer):
        raise ConversionError("internal: unfolded affine reached the ONNX emitter")

    def relu(self, x, layer):
        if layer["disabled"]:
            return x
        return (self._node("Relu", [x[0]], "relu"), x[1])

    def _pool(self, x, layer, op, global_op):
        name, shape = x
        if layer["nr"] == 0:
            return (self._node(global_op, [name], "gpool"), shape[:2] + (1, 1))
        (sy, sx), (py, px) = layer["stride"], layer["pad"]
        out = self._node(op, [name], "pool", kernel_shape=[layer["nr"], layer["nc"]],
                         strides=[sy, sx], pads=[py, px, py, px], ceil_mode=0)
        oshape = (shape[0], shape[1],
                  None if shape[2] is None else pool_out(shape[2], layer["nr"], sy, py),
                  None if shape[3] is None else pool_out(shape[3], layer["nc"], sx, px))
        return (out, oshape)

    def max_pool(self, x, layer):
        return self._pool(x, layer, "MaxPool", "GlobalMaxPool")

    def avg_pool(self, x, layer):
        return self._pool(x, layer, "AveragePool", "GlobalAveragePool")

    def _pad_to(self, x, target):
        name, shape = x
        if shape == target:
            return name
        if any(d is None for d in shape[1:] + target[1:]):
            raise ConversionError("zero-padded add needs static shapes")
        if shape[0] != target[0]:
            raise ConversionError("zero-padded add across the batch dimension is not supported")
        pads = [0, 0, 0, 0] + [0] + [t - d for d, t in zip(shape[1:], target[1:])]
        base = self._name("pad")
        pi = self._init(base + "_amounts", np.array(pads, dtype=np.int64))
        self.nodes.append(self.helper.make_node("Pad", [name, pi], [base], name=base, mode="constant"))
        return base

    def add_prev(self, a, b):
        target = (a[1][0],) + tuple(max(p, q) for p, q in zip(a[1][1:], b[1][1:]))
        pa, pb = self._pad_to(a, target), self._pad_to(b, target)
        return (self._node("Add", [pa, pb], "add"), target)

    def fc(self, x, layer):
        name, shape = x
        flat = self._node("Flatten", [name], "flatten", axis=1)
        base = self._name("fc")
        wi = self._init(base + "_W", layer["W"].astype(np.float32))
        if layer["b"] is None:
            self.nodes.append(self.helper.make_node("MatMul", [flat, wi], [base], name=base))
        else:
            mm = self._node("MatMul", [flat, wi], "fc_mm")
            bi = self._init(base + "_B", layer["b"].astype(np.float32))
            self.nodes.append(self.helper.make_node("Add", [mm, bi], [base], name=base))
        return (base, (shape[0], layer["num_outputs"]))


def build_onnx(layers, input_name, input_dims, output_name, output_dims, graph_name, doc):
    import onnx
    from onnx import TensorProto, helper

    em = OnnxEmitter("")
    shape = tuple(d if isinstance(d, int) else None for d in input_dims)
    last, _ = run_layers(fold_affines(layers), (input_name, shape), em)
    # Rename the last node's output to the contract name.
    for node in em.nodes:
        for i, o in enumerate(node.output):
            if o == last:
                node.output[i] = output_name
        for i, inp in enumerate(node.input):
            if inp == last:
                node.input[i] = output_name
    graph = helper.make_graph(
        em.nodes, graph_name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, list(output_dims))],
        initializer=em.inits)
    graph.doc_string = doc
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="renzheng-dlib_to_onnx",
                              producer_version=str(CONVERTER_VERSION))
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------------------
# Converters
# ---------------------------------------------------------------------------


def count_kinds(layers: list) -> dict:
    out = {}
    for layer in layers:
        out[layer["kind"]] = out.get(layer["kind"], 0) + 1
    return dict(sorted(out.items()))


def receptive_mapping(layers: list) -> tuple:
    """Compose dlib's map_output_to_input (p*stride - pad + k/2) over the
    convolutions, giving score-map cell c -> input point stride*c + offset."""
    stride, offset = 1, 0
    for layer in reversed(layers):  # outermost first
        if layer["kind"] in ("con", "max_pool", "avg_pool"):
            k = layer["W"].shape[3] if layer["kind"] == "con" else layer["nc"]
            sx, px = layer["stride"][1], layer["pad"][1]
            offset = offset * sx - px + k // 2
            stride *= sx
        elif layer["kind"] in ("add_prev", "tag", "skip"):
            raise ConversionError("score map geometry undefined for a branching net")
    return stride, offset


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConversionError(f"cannot read {path}: {e}") from None


def convert_detector(path: str):
    data = read_file(path)
    s = DlibStream(data, os.path.basename(path))
    loss, inp, layers = parse_network(s, detector_spec())
    kinds = count_kinds(layers)
    if kinds.get("con") != 7:
        raise ConversionError(f"detector: expected 7 convolutions, parsed {kinds}")
    if loss["use_bounding_box_regression"] or len(loss["detector_windows"]) != 1:
        raise ConversionError("detector: expected one detector window and no bounding-box regression")
    if layers[-1]["W"].shape[0] != len(loss["detector_windows"]):
        raise ConversionError("detector: score channels do not match the detector windows")
    model = build_onnx(layers, "image", [1, 3, "H", "W"], "scores", [1, 1, "Hs", "Ws"],
                       "dlib_mmod_face_detector",
                       "dlib MMOD CNN face detector; input (pixel-avg)/256 tiled pyramid, planar RGB")
    stride, offset = receptive_mapping(layers)
    win = loss["detector_windows"][0]
    bn_eps = sorted({layer["eps"] for layer in layers if layer.get("version") == "bn_con2"})
    report = {
        # input_rgb_image_pyramid record of the .dat file
        "input_avg_rgb": inp["avg_rgb"],
        "input_layer": inp["version"],
        # constant in dlib/dnn/input.h
        "input_scale": INPUT_SCALE,
        # from the C++ type pyramid_down<6> (not stored)
        "pyramid_downsample": PYRAMID_DOWNSAMPLE,
        "pyramid_padding": inp["pyramid_padding"],
        "pyramid_outer_padding": inp["pyramid_outer_padding"],
        "pyramid_padding_source": inp["padding_source"],
        # loss_mmod_ record (mmod_options) of the .dat file
        "window_width": win["width"],
        "window_height": win["height"],
        "detector_windows": loss["detector_windows"],
        "overlaps_nms": loss["overlaps_nms"],
        "iou_thresh": loss["overlaps_nms"]["iou_thresh"],
        "percent_covered_thresh": loss["overlaps_nms"]["percent_covered_thresh"],
        "overlaps_ignore": loss["overlaps_ignore"],
        "truth_match_iou_threshold": loss["truth_match_iou_threshold"],
        "loss_per_false_alarm": loss["loss_per_false_alarm"],
        "loss_per_missed_target": loss["loss_per_missed_target"],
        "assume_image_pyramid": loss["assume_image_pyramid"],
        "use_bounding_box_regression": loss["use_bounding_box_regression"],
        "mmod_options_version": loss["mmod_options_version"],
        # composed from the parsed convolutions (dlib's map_output_to_input)
        "score_map_stride": stride,
        "score_map_offset": offset,
        "score_threshold": 0.0,  # dlib's to_label default adjust_threshold (keep score > 0)
        "bn_eps": bn_eps,
        "layer_counts": kinds,
    }
    return model, layers, report


def convert_recognition(path: str):
    data = read_file(path)
    s = DlibStream(data, os.path.basename(path))
    loss, inp, layers = parse_network(s, recognition_spec())
    kinds = count_kinds(layers)
    if kinds.get("con") != 29:
        raise ConversionError(f"recognition: expected 29 convolutions, parsed {kinds}")
    fc = layers[-1]
    if fc["kind"] != "fc" or fc["num_inputs"] != 256:
        raise ConversionError("recognition: expected a final fc with 256 inputs")
    dim = fc["num_outputs"]
    model = build_onnx(layers, "chip", ["N", 3, inp["nr"], inp["nc"]], "embedding", ["N", dim],
                       "dlib_face_recognition_resnet_v1",
                       "dlib face recognition ResNet; input (pixel-avg)/256 150x150 chip, planar RGB")
    report = {
        # input_rgb_image_sized record of the .dat file
        "input_avg_rgb": inp["avg_rgb"],
        # constant in dlib/dnn/input.h
        "input_scale": INPUT_SCALE,
        # NR/NC of input_rgb_image_sized in the .dat file
        "chip_size": inp["nr"],
        # get_face_chip_details(shape, 150, 0.25) (dlib example; not stored)
        "chip_padding": CHIP_PADDING,
        # fc_ num_outputs in the .dat file
        "embedding_dim": dim,
        # dlib example's decision rule (not stored)
        "same_person_distance": SAME_PERSON_DISTANCE,
        # loss_metric_ record of the .dat file (training parameters)
        "loss_metric_version": loss["version"],
        "loss_margin": loss["margin"],
        "loss_dist_thresh": loss["dist_thresh"],
        "layer_counts": kinds,
    }
    return model, layers, report


def parse_shape_predictor(path: str) -> dict:
    data = read_file(path)
    s = DlibStream(data, os.path.basename(path))
    s.expect_int(1, "shape_predictor version")
    init = s.read_matrix("initial_shape")
    if init.shape[1] != 1 or init.shape[0] % 2:
        s.fail(f"initial_shape is {init.shape}, expected a column vector of 2*L values")
    dim = init.shape[0]
    forests = []
    for c in range(s.read_uint("number of cascades")):
        trees = []
        for t in range(s.read_uint(f"number of trees in cascade {c}")):
            splits = []
            for _ in range(s.read_uint("number of splits")):
                splits.append((s.read_uint("split idx1"), s.read_uint("split idx2"),
                               s.read_float("split thresh")))
            leaves = []
            for _ in range(s.read_uint("number of leaves")):
                m = s.read_matrix("leaf value")
                if m.shape != (dim, 1):
                    s.fail(f"leaf value of shape {m.shape}, expected ({dim}, 1)")
                leaves.append(m[:, 0])
            trees.append((splits, leaves))
        forests.append(trees)
    anchors = [[s.read_uint("anchor idx") for _ in range(s.read_uint("anchor count"))]
               for _ in range(s.read_uint("number of anchor lists"))]
    deltas = []
    for _ in range(s.read_uint("number of delta lists")):
        deltas.append([(s.read_float("delta x"), s.read_float("delta y"))
                       for _ in range(s.read_uint("delta count"))])
    s.expect_end()
    return {"initial_shape": init[:, 0], "forests": forests, "anchors": anchors, "deltas": deltas}


def build_rzsp(sp: dict) -> tuple:
    L_ = sp["initial_shape"].size // 2
    forests, anchors, deltas = sp["forests"], sp["anchors"], sp["deltas"]
    C = len(forests)
    T = len(forests[0]) if C else 0
    S = len(forests[0][0][0]) if T else 0
    NL = len(forests[0][0][1]) if T else 0
    P = len(anchors[0]) if anchors else 0
    problems = []
    if C == 0 or T == 0 or S == 0:
        problems.append("empty cascade/tree structure")
    if NL != S + 1 or NL & (NL - 1):
        problems.append(f"{S} splits and {NL} leaves is not a full binary tree")
    if len(anchors) != C or len(deltas) != C:
        problems.append(f"{C} cascades but {len(anchors)} anchor lists, {len(deltas)} delta lists")
    for c in range(C):
        if len(forests[c]) != T:
            problems.append(f"cascade {c} has {len(forests[c])} trees, cascade 0 has {T}")
        for t, (splits, leaves) in enumerate(forests[c]):
            if len(splits) != S or len(leaves) != NL:
                problems.append(f"cascade {c} tree {t}: {len(splits)} splits, {len(leaves)} leaves")
            for i1, i2, _ in splits:
                if i1 >= P or i2 >= P:
                    problems.append(f"cascade {c} tree {t}: split index {max(i1, i2)} >= {P}")
        if c < len(anchors) and (len(anchors[c]) != P or len(deltas[c]) != P):
            problems.append(f"cascade {c}: {len(anchors[c])} anchors, {len(deltas[c])} deltas, expected {P}")
        if c < len(anchors) and any(a >= L_ for a in anchors[c]):
            problems.append(f"cascade {c}: anchor index >= {L_}")
        if len(problems) > 5:
            break
    if L_ != EXPECTED_LANDMARKS:
        problems.insert(0, f"{L_} landmarks, the engine needs the {EXPECTED_LANDMARKS}-point model")
    if problems:
        raise ConversionError("landmarks: inconsistent shape predictor: " + "; ".join(problems[:5]))

    parts = [b"RZSP", struct.pack("<7I", RZSP_VERSION, L_, C, T, S, NL, P),
             np.asarray(sp["initial_shape"], dtype="<f4").tobytes()]
    split_dt = np.dtype([("i1", "<u4"), ("i2", "<u4"), ("t", "<f4")])
    for c in range(C):
        parts.append(np.asarray(anchors[c], dtype="<u4").tobytes())
        parts.append(np.asarray(deltas[c], dtype="<f4").reshape(-1).tobytes())
        for splits, leaves in forests[c]:
            parts.append(np.array(splits, dtype=split_dt).tobytes())
            parts.append(np.asarray(leaves, dtype="<f4").reshape(-1).tobytes())
    blob = b"".join(parts)
    expected = 8 + 24 + 8 * L_ + C * (4 * P + 8 * P + T * (12 * S + 8 * L_ * NL))
    if len(blob) != expected:
        raise ConversionError(f"internal: RZSP size {len(blob)} != expected {expected}")
    return blob, {"num_landmarks": L_, "num_cascades": C, "trees_per_cascade": T,
            "num_splits_per_tree": S, "num_leaves_per_tree": NL, "tree_depth": int(math.log2(NL)),
            "feature_pixels_per_cascade": P,
            "initial_shape": [float(np.float32(v)) for v in sp["initial_shape"]],
            "rzsp_version": RZSP_VERSION, "value_layout": "x0,y0,x1,y1,..."}


def write_bytes(path: str, blob: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------


def self_check(model_label: str, model_bytes: bytes, layers: list, input_name: str, inputs: list) -> float:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConversionError("--self-check needs the onnxruntime package") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    ref = NumpyReference()
    worst = 0.0
    for label, x in inputs:
        got = sess.run(None, {input_name: x.astype(np.float32)})[0]
        want = run_layers(layers, x.astype(np.float64), ref)
        if got.shape != want.shape:
            raise ConversionError(f"self-check {label}: ONNX shape {got.shape} != reference {want.shape}")
        diff = float(np.max(np.abs(got.astype(np.float64) - want)))
        scale = float(np.max(np.abs(want)))
        log(f"  {model_label} {label}: out {tuple(got.shape)}, "
            f"max|ref| {scale:.4g}, max abs diff {diff:.3g}")
        worst = max(worst, diff)
    return worst


def run_self_checks(blobs: dict, det_layers, rec_layers, tolerance=1e-4) -> dict:
    rng = np.random.default_rng(12345)
    log("self-check: onnxruntime vs numpy reference of the parsed dlib layers")
    det_inputs = [
        ("random 1x3x227x301", rng.uniform(-0.5, 0.5, (1, 3, 227, 301))),
        ("random 1x3x120x96", rng.uniform(-0.5, 0.5, (1, 3, 120, 96))),
        ("constant 0.25 1x3x140x150", np.full((1, 3, 140, 150), 0.25)),
    ]
    rec_inputs = [
        ("random 2x3x150x150", rng.uniform(-0.5, 0.5, (2, 3, 150, 150))),
        ("constant 0.25 1x3x150x150", np.full((1, 3, 150, 150), 0.25)),
    ]
    res = {
        "detector_max_abs_diff": self_check("detector.onnx", blobs["detector.onnx"],
                                            det_layers, "image", det_inputs),
        "recognition_max_abs_diff": self_check("recognition.onnx", blobs["recognition.onnx"],
                                               rec_layers, "chip", rec_inputs),
    }
    for k, v in res.items():
        if not v <= tolerance:
            raise ConversionError(f"self-check failed: {k} = {v:.3g} > {tolerance}")
    return res


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def convert(models_dir: str, out_dir: str, do_self_check: bool) -> dict:
    """Parse, convert (and optionally check) everything in memory; the pack is
    written only once all of it succeeded, the report last."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConversionError("the conversion needs the onnx package") from None
    paths = {k: os.path.join(models_dir, f) for k, f in
             (("detector", DETECTOR_FILE), ("landmarks", LANDMARKS_FILE),
              ("recognition", RECOGNITION_FILE))}
    for p in paths.values():
        if not os.path.isfile(p):
            raise ConversionError(f"missing model file {p}")
    t0 = time.monotonic()
    blobs = {}

    log(f"parsing {DETECTOR_FILE}")
    det_model, det_layers, det_report = convert_detector(paths["detector"])
    blobs["detector.onnx"] = det_model.SerializeToString()
    log(f"  detector: layers {det_report['layer_counts']}, score map stride "
        f"{det_report['score_map_stride']} offset {det_report['score_map_offset']}")

    log(f"parsing {RECOGNITION_FILE}")
    rec_model, rec_layers, rec_report = convert_recognition(paths["recognition"])
    blobs["recognition.onnx"] = rec_model.SerializeToString()
    log(f"  recognition: layers {rec_report['layer_counts']}")

    log(f"parsing {LANDMARKS_FILE}")
    blobs["landmarks.rzsp"], lm_report = build_rzsp(parse_shape_predictor(paths["landmarks"]))
    log(f"  landmarks: {lm_report['num_landmarks']} landmarks, "
        f"{lm_report['num_cascades']} cascades x {lm_report['trees_per_cascade']} trees "
        f"(depth {lm_report['tree_depth']}), {lm_report['feature_pixels_per_cascade']} feature pixels")

    if do_self_check:
        # Not written into the report: the pack must not depend on the flag.
        checks = run_self_checks(blobs, det_layers, rec_layers)
        log("self-check passed: " + ", ".join(f"{k} {v:.3g}" for k, v in checks.items()))

    report = {
        "converter_version": CONVERTER_VERSION,
        "onnx_opset": OPSET,
        "detector": det_report,
        "recognition": rec_report,
        "landmarks": lm_report,
        "sources": {k: {"file": os.path.basename(p), "sha256": sha256_file(p)}
                    for k, p in paths.items()},
        "outputs": {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()},
    }
    blobs["convert_report.json"] = (json.dumps(report, indent=2) + "\n").encode()
    os.makedirs(out_dir, exist_ok=True)
    for name, blob in blobs.items():
        write_bytes(os.path.join(out_dir, name), blob)
        log(f"  wrote {name} ({len(blob)} bytes)")
    log(f"done in {time.monotonic() - t0:.1f}s -> {out_dir}")
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", required=True, help="directory holding dlib's .dat files")
    ap.add_argument("--out", required=True, help="output pack directory")
    ap.add_argument("--self-check", action="store_true",
                    help="compare onnxruntime against a numpy reference (needs onnxruntime)")
    args = ap.parse_args(argv)
    try:
        convert(args.models_dir, args.out, args.self_check)
    except ConversionError as e:
        log(f"ERROR: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
