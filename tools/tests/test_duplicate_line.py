"""Tests of tools/duplicate_line.py: the line's arithmetic, the fits on synthetic tails,
the shipped values against the Rust source, and a whole `fit` run on small files."""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from pathlib import Path
from statistics import NormalDist

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

import duplicate_line as dl

REPO = TOOLS.parent


def test_the_line_matches_the_rust_model():
    # duplicate.rs's own unit-test line.
    line = dl.Line(anchor_distance=0.7, anchor_rate=1e-2, scale=0.05, floor_distance=0.2)
    assert line.max_distance(1, 0.55) == 0.55
    assert line.max_distance(2**64 - 1, 0.55) == 0.2
    previous = math.inf
    for n in [1, 10, 1_000, 100_000, 1_000_000]:
        d = line.max_distance(n, 0.55)
        assert 0.2 <= d <= min(previous, 0.55)
        if d > line.floor_distance:
            assert n * line.impostor_rate(d) <= dl.BUDGET * (1 + 1e-9)
        previous = d
    # Unclamped, the line spends exactly the budget.
    d = line.max_distance(10_000, 0.55)
    assert math.isclose(10_000 * line.impostor_rate(d), dl.BUDGET, rel_tol=1e-9)


def test_the_shipped_values_are_the_rust_ones():
    for pack in ("sface", "dlib"):
        text = (REPO / f"crates/renzheng-vision/src/pack/{pack}.rs").read_text(encoding="utf-8")
        body = text[text.index(f"pub fn {pack}_duplicate_line()") :]
        body = body[: body.index("\n}")]
        values = {
            k: float(v) for k, v in re.findall(r"(\w+): ([0-9.eE+-]+),", body)
        }
        assert dl.Line(**values) == dl.SHIPPED[pack], pack
        assert dl.SHIPPED[pack].floor_distance <= dl.SHIPPED[pack].anchor_distance


def exponential_tail(n: int, anchor: float, scale: float, rate: float) -> list[float]:
    """Evenly spaced quantiles: the lower `rate` exponential below `anchor`, the rest
    spread above it."""
    out = []
    for i in range(n):
        u = (i + 0.5) / n
        if u < rate:
            out.append(anchor + scale * math.log(u / rate))
        else:
            out.append(anchor + (u - rate))
    return out


def test_the_exponential_fit_recovers_its_scale():
    d = exponential_tail(200_000, anchor=0.7, scale=0.04, rate=0.01)
    fit = dl.fit_tail(d, 0.01)
    assert math.isclose(fit.anchor, 0.7, abs_tol=1e-4)
    assert math.isclose(fit.rate, 0.01, rel_tol=1e-3)
    assert math.isclose(fit.scale, 0.04, rel_tol=0.01)
    assert fit.loglik_exp > fit.loglik_gauss
    # Exponential beyond the anchor: it falls more slowly than the Gaussian fitted to it.
    assert fit.exp_distance_at(1e-8) < fit.gauss_distance_at(1e-8)


def test_the_gaussian_fit_recovers_a_normal_tail():
    normal = NormalDist(0.9, 0.1)
    d = [normal.inv_cdf((i + 0.5) / 100_000) for i in range(100_000)]
    fit = dl.fit_tail(d, 0.01)
    assert math.isclose(fit.gauss_sigma, 0.1, rel_tol=0.03)
    assert math.isclose(fit.gauss_mu, 0.9, abs_tol=0.005)
    assert fit.loglik_gauss > fit.loglik_exp


def test_a_weighted_fit_with_unit_weights_is_the_plain_fit():
    d = exponential_tail(20_000, anchor=0.6, scale=0.03, rate=0.01)
    plain = dl.fit_tail(d, 0.01)
    weighted = dl.fit_tail(d[:1000], 0.01, [1.0] * 1000, float(len(d)))
    assert weighted.k == plain.k
    assert math.isclose(weighted.scale, plain.scale, rel_tol=1e-9)
    assert math.isclose(weighted.anchor, plain.anchor, rel_tol=1e-9)


def test_pairs_are_every_photo_against_every_other(tmp_path):
    for who, n in (("A", 2), ("B", 1)):
        (tmp_path / "set" / who).mkdir(parents=True)
        for i in range(n):
            (tmp_path / "set" / who / f"{who}_{i}.jpg").write_bytes(b"")
    (tmp_path / "set" / "pairs.csv").write_text("not a photo")
    photos, n = dl.write_pairs(tmp_path / "set", tmp_path / "pairs.csv")
    assert (photos, n) == (3, 3)
    with open(tmp_path / "pairs.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["file_x"], r["file_y"], r["same"]) for r in rows] == [
        ("A/A_0.jpg", "A/A_1.jpg", "1"),
        ("A/A_0.jpg", "B/B_0.jpg", "0"),
        ("A/A_1.jpg", "B/B_0.jpg", "0"),
    ]


def write_csv(path: Path, header: list[str], rows: list[list]) -> str:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def test_fit_runs_end_to_end(tmp_path, capsys):
    # 40 people, impostor distances from an exponential tail, genuine ones low.
    people = [f"P{i:02d}" for i in range(40)]
    impostors = [(a, b) for i, a in enumerate(people) for b in people[i + 1 :]]
    d = exponential_tail(len(impostors), anchor=0.65, scale=0.045, rate=0.01)
    d = d[::7] + [x for i, x in enumerate(d) if i % 7]  # spread the tail over the people
    rows = [[f"{a}/1.jpg", f"{b}/1.jpg", 0, f"{x:.6f}", 0, 3] for (a, b), x in zip(impostors, d)]
    rows += [[f"{p}/1.jpg", f"{p}/2.jpg", 1, f"{0.1 + i / 100:.6f}", 1, 1] for i, p in enumerate(people)]
    rows.append(["P00/1.jpg", "P01/3.jpg", 0, "", "", 6])
    header = ["file_x", "file_y", "same", "distance", "score", "result"]
    main_set = write_csv(tmp_path / "main.csv", header, rows)
    reuse = write_csv(
        tmp_path / "reuse.csv",
        header,
        [
            ["X/a__orig.jpg", "X/a__jpeg90.jpg", 1, "0.01", 1, 1],
            ["X/a__orig.jpg", "X/a__jpeg70.jpg", 1, "0.03", 1, 1],
            ["X/a__orig.jpg", "X/a__crop5.jpg", 1, "0.12", 1, 1],
            ["X/a__orig.jpg", "X/a__wmdense.jpg", 1, "0.40", 1, 2],
            ["X/a__orig.jpg", "X/a__w100.jpg", 1, "", "", 6],
        ],
    )
    images = write_csv(
        tmp_path / "reuse.img.csv",
        ["file", "outcome", "issues", "warnings"],
        [
            ["X/a__orig.jpg", "Usable", "", ""],
            ["X/a__jpeg90.jpg", "Usable", "", ""],
            ["X/a__jpeg70.jpg", "Usable", "", ""],
            ["X/a__crop5.jpg", "Usable", "", "face_cut_off"],
            ["X/a__wmdense.jpg", "Usable", "", ""],
            ["X/a__w100.jpg", "NoFace", "", ""],
        ],
    )
    code = dl.main(
        ["fit", "--pack", "sface", "--splits", "5", "--bootstrap", "20",
         "--reuse", reuse, "--reuse-images", images, f"ea={main_set}"]
    )
    assert code == 0
    out = capsys.readouterr().out
    result = json.loads(out[: out.index("\n\n# sface")])
    s = result["sets"][0]
    assert (s["name"], s["impostor"], s["genuine"], s["no_distance"]) == ("ea", 780, 40, 1)
    assert math.isclose(s["fit"]["scale"], 0.045, rel_tol=0.15)
    assert [r["comparisons"] for r in result["table"]] == dl.COMPARISONS
    assert all(r["line"] >= result["line"]["floor_distance"] for r in result["table"])
    reuse_out = result["floor"]["reuse"]
    assert reuse_out["clean"]["n"] == 2  # the warned crop and the dense watermark left out
    assert reuse_out["no_face"] == {"w100": 1}
    assert result["proposal"]["floor_distance"] == 0.05
    assert "| 1e+03 |" in out
