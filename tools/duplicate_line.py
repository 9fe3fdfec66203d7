"""The duplicate-face line (`renzheng_vision::DuplicateLine`): fit, check and table.

Reproduces `docs/calibration.md` § Duplicate-face line from the per-pair files that
`renzheng eval --per-pair` writes. Python 3.11, standard library only, except the
`variants` subcommand, which needs Pillow (research, not CI; measured with Pillow 13.0.0 in
a throw-away virtualenv).

The model (`crates/renzheng-vision/src/duplicate.rs`): the impostor distances' lower tail
is exponential, P(D <= d) = anchor_rate * exp((d - anchor_distance) / scale) for
d <= anchor_distance; for N comparisons the line is the largest d with N * P(D <= d) <=
0.01, clamped to [floor_distance, same_max_distance].

What `fit` does, per set (a set is a per-pair CSV; impostor = the two paths' first folders
differ, genuine = they agree; pairs without a distance are counted and left out):
- the empirical lower quantiles of the impostor distances;
- the exponential tail: anchor = the midpoint between the k-th and (k+1)-th smallest
  impostor distance, k = round(q * n) (q = --anchor-quantile), rate = k / n, scale = the
  maximum-likelihood estimate mean(anchor - d) over the k distances below the anchor;
- a Gaussian tail with the same anchor and rate (P = Phi((d - mu) / sigma), sigma by
  maximum likelihood on the same k distances, closed form), the log-likelihoods of both,
  and the distance each puts at 1e-6 and 1e-8 (the smaller falls more slowly: the
  conservative one);
- goodness of fit: observed against predicted counts at anchor - 0.05, - 0.10, ...;
- a hold-out by identity: --splits random halves of the people; the tail is fitted on the
  impostor pairs within one half and its counts predicted for the pairs within the other;
- an identity bootstrap (--bootstrap resamples of the people, pairs weighted by the product
  of their people's multiplicities) of the anchor and the scale, and the share of
  resamples under whose fit the checked line keeps the budget at each N.
--drop-pair A/B leaves out the pairs between two people (to see how much one look-alike
pair moves the fit).
Then the shipped line (--anchor/--rate/--scale/--floor, default: SHIPPED[--pack], the
values in `pack/{sface,dlib}.rs`) is checked against every set (observed against predicted
impostor counts; each set's own fitted line against the shipped one), a proposal is
computed by the rule of the docs, and the table printed: for each N, the line, the expected
false matches per search, the share of each set's genuine pairs at or below the line and,
with --reuse, the share of reuse pairs (a photo against its own re-encoded, resized, ...
copy). Output: one JSON object, then the text report (--text: the report only).

Commands (from the repository root; `renzheng` is a build of this repository with both
packs installed, `renzheng models install --pack sface` and `--pack dlib`; the figures in
the docs came from a debug build):

    mkdir -p /tmp/dupcal/pairs /tmp/dupcal/out
    for s in lfw_eastasian_dev lfw_fold1 celeb5; do
      python3 tools/duplicate_line.py pairs ../shared/faces/$s /tmp/dupcal/pairs/$s.csv
    done
    for p in sface dlib; do for s in lfw_eastasian_dev lfw_fold1 celeb5; do
      renzheng --pack $p eval --pairs /tmp/dupcal/pairs/$s.csv --root ../shared/faces/$s \\
          --per-pair /tmp/dupcal/out/${p}_$s.csv --json --threads 2
    done; done
    # the reuse copies (Pillow): 60 photos, 12 copies each, and their pairs list
    renzheng --pack sface eval --pairs ../shared/faces/celeb5/pairs.csv \\
        --per-image /tmp/dupcal/out/sface_celeb5.img.csv --json
    python3 tools/duplicate_line.py variants --shared ../shared/faces \\
        --celeb5-images /tmp/dupcal/out/sface_celeb5.img.csv /tmp/dupcal/reuse
    for p in sface dlib; do
      renzheng --pack $p eval --pairs /tmp/dupcal/reuse/pairs.csv --root /tmp/dupcal/reuse \\
          --per-pair /tmp/dupcal/out/${p}_reuse.csv \\
          --per-image /tmp/dupcal/out/${p}_reuse.img.csv --json --threads 2
    done
    for p in sface dlib; do
      python3 tools/duplicate_line.py fit --pack $p --bootstrap 1000 --splits 200 \\
          --reuse /tmp/dupcal/out/${p}_reuse.csv \\
          --reuse-images /tmp/dupcal/out/${p}_reuse.img.csv \\
          /tmp/dupcal/out/${p}_lfw_eastasian_dev.csv /tmp/dupcal/out/${p}_lfw_fold1.csv \\
          /tmp/dupcal/out/${p}_celeb5.csv
    done

The first set given to `fit` is the primary one (East-Asian): the proposal's anchor and
scale come from it, the other sets can only make the line stricter.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist

# renzheng_vision::FALSE_MATCH_BUDGET: expected false matches allowed per search.
BUDGET = 0.01
# Each pack's "same" band (same_max_distance), which the line never exceeds.
SAME_MAX = {"sface": 0.55, "dlib": 0.39}
COMPARISONS = [10**3, 10**4, 10**5, 10**6, 10**7]
# Copies the floor is not asked to cover: a dense watermark tiled over the whole photo.
STRESS_VARIANTS = ("wmdense",)
# Re-encodes the floor must always cover (clean photos).
LIGHT_REENCODES = ("jpeg90", "jpeg70")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Line:
    """Mirror of `renzheng_vision::DuplicateLine`."""

    anchor_distance: float
    anchor_rate: float
    scale: float
    floor_distance: float

    def impostor_rate(self, distance: float) -> float:
        if distance >= self.anchor_distance:
            return self.anchor_rate
        return self.anchor_rate * math.exp((distance - self.anchor_distance) / self.scale)

    def max_distance(self, comparisons: int, same_max_distance: float) -> float:
        n = float(max(comparisons, 1))
        budget_rate = BUDGET / n
        if budget_rate >= self.anchor_rate:
            line = same_max_distance
        else:
            line = self.anchor_distance + self.scale * math.log(budget_rate / self.anchor_rate)
        return max(min(line, same_max_distance), self.floor_distance)


# The values shipped in `pack/sface.rs` / `pack/dlib.rs` (a test holds them equal).
SHIPPED = {
    "sface": Line(anchor_distance=0.67, anchor_rate=0.01, scale=0.054, floor_distance=0.15),
    "dlib": Line(anchor_distance=0.45, anchor_rate=0.01, scale=0.028, floor_distance=0.25),
}


@dataclass(frozen=True)
class Pair:
    distance: float
    same: bool
    person_x: str
    person_y: str
    file_x: str
    file_y: str


def person(path: str) -> str:
    """A pair path's identity: its first folder."""
    return path.replace("\\", "/").split("/", 1)[0]


def read_pairs(path: str) -> tuple[list[Pair], int]:
    """The pairs of a per-pair CSV that have a distance, and how many had none."""
    pairs, missing = [], 0
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if not row.get("distance"):
                missing += 1
                continue
            fx, fy = row["file_x"], row["file_y"]
            same = row["same"].strip() == "1"
            pairs.append(Pair(float(row["distance"]), same, person(fx), person(fy), fx, fy))
    return pairs, missing


# ---------------------------------------------------------------------------------------
# Fits


@dataclass(frozen=True)
class TailFit:
    anchor: float
    rate: float
    k: int
    n: float
    scale: float
    scale_se: float
    gauss_mu: float
    gauss_sigma: float
    loglik_exp: float
    loglik_gauss: float

    def exp_rate(self, d: float) -> float:
        return self.rate * math.exp(min(0.0, d - self.anchor) / self.scale)

    def gauss_rate(self, d: float) -> float:
        if d >= self.anchor:
            return self.rate
        return _NORMAL.cdf((d - self.gauss_mu) / self.gauss_sigma)

    def exp_distance_at(self, rate: float) -> float:
        return self.anchor + self.scale * math.log(rate / self.rate)

    def gauss_distance_at(self, rate: float) -> float:
        return self.gauss_mu + self.gauss_sigma * _NORMAL.inv_cdf(rate)

    def line(self, floor: float = 0.0) -> Line:
        return Line(self.anchor, self.rate, self.scale, floor)


def fit_tail(
    distances: list[float],
    quantile: float,
    weights: list[float] | None = None,
    total: float | None = None,
) -> TailFit:
    """Exponential and Gaussian tails below the `quantile` of sorted `distances`.

    With `weights` (same order), a weighted fit: the anchor is where the cumulative weight
    first reaches quantile * `total` (default: the sum of the weights; the bootstrap passes
    the lowest distances only, with the whole set's total)."""
    if weights is None:
        n = float(len(distances))
        k = max(1, round(quantile * n))
        if k >= len(distances):
            raise ValueError("too few impostor pairs for the anchor quantile")
        anchor = (distances[k - 1] + distances[k]) / 2
        below = [(d, 1.0) for d in distances[:k]]
    else:
        n = math.fsum(weights) if total is None else total
        target, cum, below = quantile * n, 0.0, []
        i = 0
        while i < len(distances) and cum < target:
            if weights[i] > 0:
                below.append((distances[i], weights[i]))
                cum += weights[i]
            i += 1
        while i < len(distances) and weights[i] <= 0:
            i += 1
        if i >= len(distances) or not below:
            raise ValueError("too few impostor pairs for the anchor quantile")
        anchor = (below[-1][0] + distances[i]) / 2
    k_w = math.fsum(w for _, w in below)
    s1 = math.fsum(w * (anchor - d) for d, w in below)
    s2 = math.fsum(w * (anchor - d) ** 2 for d, w in below)
    rate = k_w / n
    scale = s1 / k_w
    loglik_exp = -k_w * math.log(scale) - s1 / scale
    # Gaussian with Phi((anchor - mu) / sigma) = rate: u = 1/sigma maximises
    # k ln u - 1/2 sum w (z - x u)^2, x = anchor - d, z = Phi^-1(rate) < 0.
    z = _NORMAL.inv_cdf(rate)
    u = (z * s1 + math.sqrt(z * z * s1 * s1 + 4 * s2 * k_w)) / (2 * s2)
    sigma = 1 / u
    mu = anchor - sigma * z
    loglik_gauss = (
        k_w * math.log(u)
        - 0.5 * math.fsum(w * (z - (anchor - d) * u) ** 2 for d, w in below)
        - k_w * math.log(rate * math.sqrt(2 * math.pi))
    )
    return TailFit(
        anchor=anchor,
        rate=rate,
        k=len(below),
        n=n,
        scale=scale,
        scale_se=scale / math.sqrt(k_w),
        gauss_mu=mu,
        gauss_sigma=sigma,
        loglik_exp=loglik_exp,
        loglik_gauss=loglik_gauss,
    )


def count_at_most(sorted_values: list[float], t: float) -> int:
    lo, hi = 0, len(sorted_values)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_values[mid] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo


def poisson_sf(observed: int, mean: float) -> float:
    """P(X >= observed) for X ~ Poisson(mean)."""
    if observed <= 0:
        return 1.0
    term = math.exp(-mean)
    cdf = term
    for i in range(1, observed):
        term *= mean / i
        cdf += term
    return max(0.0, 1.0 - cdf)


def quantile_of(sorted_values: list[float], q: float) -> float:
    """The value at rank ceil(q * n) (1-based): at least a share q is at or below it."""
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[i]


def goodness(imp: list[float], fit: TailFit, deltas=(0.05, 0.10, 0.15, 0.20)) -> list[dict]:
    n = len(imp)
    rows = []
    for delta in deltas:
        t = fit.anchor - delta
        rows.append(
            {
                "distance": round(t, 4),
                "observed": count_at_most(imp, t),
                "exponential": n * fit.exp_rate(t),
                "gaussian": n * fit.gauss_rate(t),
            }
        )
    return rows


def holdout(pairs: list[Pair], quantile: float, splits: int, seed: int) -> dict:
    """Fit on the impostor pairs within a random half of the people, predict the other's."""
    people = sorted({p.person_x for p in pairs} | {p.person_y for p in pairs})
    rng = random.Random(seed)
    deltas = (0.05, 0.10, 0.15)
    obs = {d: 0 for d in deltas}
    pred = {d: 0.0 for d in deltas}
    within = {d: 0 for d in deltas}
    scales, done = [], 0
    imp = [p for p in pairs if not p.same]
    for _ in range(splits):
        shuffled = people[:]
        rng.shuffle(shuffled)
        half = set(shuffled[: len(people) // 2])
        a = sorted(p.distance for p in imp if p.person_x in half and p.person_y in half)
        b = sorted(
            p.distance for p in imp if p.person_x not in half and p.person_y not in half
        )
        try:
            fit = fit_tail(a, quantile)
        except ValueError:
            continue
        done += 1
        scales.append(fit.scale)
        for d in deltas:
            t = fit.anchor - d
            o, e = count_at_most(b, t), len(b) * fit.exp_rate(t)
            obs[d] += o
            pred[d] += e
            within[d] += o <= e or poisson_sf(o, e) >= 0.05
    scales.sort()
    return {
        "splits": done,
        "scale_5_50_95": [quantile_of(scales, q) for q in (0.05, 0.5, 0.95)] if scales else [],
        "below_anchor_minus": [
            {
                "delta": d,
                "observed": obs[d],
                "predicted": round(pred[d], 2),
                "ratio": obs[d] / pred[d] if pred[d] else float("nan"),
                "share_of_splits_consistent": within[d] / done if done else float("nan"),
            }
            for d in deltas
        ],
    }


def bootstrap(pairs: list[Pair], quantile: float, reps: int, seed: int) -> dict:
    """Identity bootstrap of the tail fit: people resampled with replacement."""
    people = sorted({p.person_x for p in pairs} | {p.person_y for p in pairs})
    index = {name: i for i, name in enumerate(people)}
    imp = sorted((p for p in pairs if not p.same), key=lambda p: p.distance)
    # Only the lowest part of the sorted list takes part in the fit; the total weight comes
    # from the per-person-pair counts.
    keep = min(len(imp), max(200, int(len(imp) * min(1.0, 20 * quantile))))
    tail = [(p.distance, index[p.person_x], index[p.person_y]) for p in imp[:keep]]
    totals: dict[tuple[int, int], int] = {}
    for p in imp:
        key = (index[p.person_x], index[p.person_y])
        totals[key] = totals.get(key, 0) + 1
    rng = random.Random(seed)
    anchors, scales, at8, fits = [], [], [], []
    tail_d = [d for d, _, _ in tail]
    for _ in range(reps):
        m = [0] * len(people)
        for i in rng.choices(range(len(people)), k=len(people)):
            m[i] += 1
        total = float(sum(c * m[a] * m[b] for (a, b), c in totals.items()))
        w = [float(m[a] * m[b]) for _, a, b in tail]
        if total <= 0 or math.fsum(w) < quantile * total:
            continue
        try:
            fit = fit_tail(tail_d, quantile, w, total)
        except ValueError:
            continue
        anchors.append(fit.anchor)
        scales.append(fit.scale)
        fits.append((fit.anchor, fit.rate, fit.scale))
        at8.append(fit.anchor + fit.scale * math.log(1e-8 / fit.rate))
    for v in (anchors, scales, at8):
        v.sort()
    pct = (0.05, 0.5, 0.95)
    return {
        "reps": len(scales),
        "anchor_5_50_95": [quantile_of(anchors, q) for q in pct],
        "scale_5_50_95": [quantile_of(scales, q) for q in pct],
        "distance_at_1e-8_5_50_95": [quantile_of(at8, q) for q in pct],
        "_fits": fits,
    }


# ---------------------------------------------------------------------------------------
# Reuse copies


def variant_of(path: str) -> str:
    """The copy's kind, from a `variants` file name: `<stem>__<kind>.jpg`."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.rsplit("__", 1)[1] if "__" in stem else "?"


def read_flags(path: str | None) -> dict[str, bool]:
    """Per photo of a --per-image CSV: whether the quality gate refused or warned it."""
    if not path:
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {
            r["file"]: bool(r.get("issues") or r.get("warnings") or r["outcome"] != "Usable")
            for r in csv.DictReader(fh)
        }


@dataclass
class ReuseSet:
    """Reuse pairs (photo, its copy) by kind; `clean`: neither photo refused or warned."""

    by_variant: dict[str, list[float]]
    clean_by_variant: dict[str, list[float]]
    no_face: dict[str, int]

    def pooled(self, clean: bool, stress: bool = False) -> list[float]:
        src = self.clean_by_variant if clean else self.by_variant
        return sorted(
            d for v, ds in src.items() if (v in STRESS_VARIANTS) == stress for d in ds
        )


def read_reuse(path: str, images: str | None) -> ReuseSet:
    flags = read_flags(images)
    by: dict[str, list[float]] = {}
    clean: dict[str, list[float]] = {}
    missing: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            v = variant_of(r["file_y"])
            by.setdefault(v, [])
            clean.setdefault(v, [])
            if not r.get("distance"):
                missing[v] = missing.get(v, 0) + 1
                continue
            d = float(r["distance"])
            by[v].append(d)
            if flags and not flags.get(r["file_x"], True) and not flags.get(r["file_y"], True):
                clean[v].append(d)
    for values in (*by.values(), *clean.values()):
        values.sort()
    return ReuseSet(by, clean, missing)


def describe(values: list[float], floor: float) -> dict:
    return {
        "n": len(values),
        "median": quantile_of(values, 0.5),
        "p95": quantile_of(values, 0.95),
        "p99": quantile_of(values, 0.99),
        "max": values[-1] if values else float("nan"),
        "share_at_or_below_floor": share_at_most(values, floor),
    }


def share_at_most(sorted_values: list[float], t: float) -> float:
    if not sorted_values:
        return float("nan")
    return count_at_most(sorted_values, t) / len(sorted_values)


# ---------------------------------------------------------------------------------------
# The analysis


def round_down(x: float, step: float) -> float:
    return math.floor(x / step + 1e-9) * step


def round_up(x: float, step: float) -> float:
    return math.ceil(x / step - 1e-9) * step


def analyse(args: argparse.Namespace) -> dict:
    shipped = SHIPPED[args.pack]
    line = Line(
        args.anchor if args.anchor is not None else shipped.anchor_distance,
        args.rate if args.rate is not None else shipped.anchor_rate,
        args.scale if args.scale is not None else shipped.scale,
        args.floor if args.floor is not None else shipped.floor_distance,
    )
    same_max = args.same_max if args.same_max is not None else SAME_MAX[args.pack]
    q = args.anchor_quantile
    sets = []
    for spec in args.sets:
        name, path = spec.split("=", 1) if "=" in spec else (Path(spec).stem, spec)
        pairs, missing = read_pairs(path)
        if args.drop_pair:
            drop = {frozenset(x.split("/", 1)) for x in args.drop_pair}
            pairs = [p for p in pairs if frozenset((p.person_x, p.person_y)) not in drop]
        imp = sorted(p.distance for p in pairs if not p.same)
        gen = sorted(p.distance for p in pairs if p.same)
        fit = fit_tail(imp, q)
        lowest = sorted((p for p in pairs if not p.same), key=lambda p: p.distance)[:5]
        below = sorted((p for p in pairs if not p.same), key=lambda p: p.distance)[: fit.k]
        people_pairs = {tuple(sorted((p.person_x, p.person_y))) for p in below}
        entry = {
            "name": name,
            "path": path,
            "genuine": len(gen),
            "impostor": len(imp),
            "no_distance": missing,
            "people": len({p.person_x for p in pairs} | {p.person_y for p in pairs}),
            "lowest_observable_rate": 1 / len(imp),
            "impostor_quantiles": {
                f"{r:g}": quantile_of(imp, r) for r in (1e-1, 1e-2, 1e-3, 1e-4) if r * len(imp) >= 1
            },
            "lowest_impostors": [
                [p.distance, p.file_x, p.file_y] for p in lowest
            ],
            "fit": asdict(fit),
            "people_pairs_below_anchor": len(people_pairs),
            "exp_distance_at": {f"{r:g}": fit.exp_distance_at(r) for r in (1e-6, 1e-8)},
            "gauss_distance_at": {f"{r:g}": fit.gauss_distance_at(r) for r in (1e-6, 1e-8)},
            "slower_tail": "exponential"
            if fit.exp_distance_at(1e-8) < fit.gauss_distance_at(1e-8)
            else "gaussian",
            "goodness": goodness(imp, fit),
            "holdout": holdout(pairs, q, args.splits, args.seed) if args.splits else None,
            "bootstrap": bootstrap(pairs, q, args.bootstrap, args.seed)
            if args.bootstrap
            else None,
            "shipped_check": shipped_check(imp, line),
            "own_line_vs_shipped": [
                {
                    "comparisons": n,
                    "own": fit.line(line.floor_distance).max_distance(n, same_max),
                    "shipped": line.max_distance(n, same_max),
                }
                for n in COMPARISONS
            ],
            "_gen": gen,
            "_fit": fit,
        }
        sets.append(entry)
    reuse = read_reuse(args.reuse, args.reuse_images) if args.reuse else None
    proposal = propose(sets, reuse, q, args.floor_share)
    primary = sets[0]["_fit"]
    table = []
    for n in COMPARISONS:
        d = line.max_distance(n, same_max)
        row = {
            "comparisons": n,
            "line": d,
            "at": "floor" if d == line.floor_distance else "same" if d == same_max else "",
            "expected_false_matches": n * line.impostor_rate(d),
            "expected_false_matches_primary_fit": n * primary.exp_rate(d),
            "genuine_catch": {s["name"]: share_at_most(s["_gen"], d) for s in sets},
        }
        if reuse:
            row["reuse_catch"] = share_at_most(reuse.pooled(False), d)
            row["reuse_catch_clean"] = share_at_most(reuse.pooled(True), d)
            row["reuse_catch_stress"] = share_at_most(reuse.pooled(False, True), d)
        table.append(row)
    floor = line.floor_distance
    floor_info = {
        "floor": floor,
        "impostor_rate_shipped": line.impostor_rate(floor),
        "impostor_rate_primary_fit": primary.exp_rate(floor),
        "expected_false_matches_at_floor": {
            f"{n:g}": n * line.impostor_rate(floor) for n in COMPARISONS
        },
        "genuine_at_or_below_floor": {s["name"]: share_at_most(s["_gen"], floor) for s in sets},
        "lowest_impostor": {s["name"]: s["lowest_impostors"][0][0] for s in sets},
    }
    if reuse:
        floor_info["candidates"] = floor_candidates(reuse, line, primary, sets[0]["_gen"])
        floor_info["reuse"] = {
            "all": describe(reuse.pooled(False), floor),
            "clean": describe(reuse.pooled(True), floor),
            "stress": describe(reuse.pooled(False, True), floor),
            "no_face": reuse.no_face,
            "by_variant": {
                v: {
                    "all": describe(ds, floor),
                    "clean": describe(reuse.clean_by_variant[v], floor),
                }
                for v, ds in sorted(reuse.by_variant.items())
            },
        }
    for s in sets:
        b = s["bootstrap"]
        if b:
            b["shipped_within_budget"] = {
                f"{n:g}": within_budget(b["_fits"], line.max_distance(n, same_max), n)
                for n in COMPARISONS
            }
            del b["_fits"]
        del s["_gen"], s["_fit"]
    return {
        "pack": args.pack,
        "same_max_distance": same_max,
        "budget": BUDGET,
        "anchor_quantile": q,
        "line": asdict(line),
        "sets": sets,
        "proposal": proposal,
        "table": table,
        "floor": floor_info,
    }


def within_budget(fits: list[tuple[float, float, float]], d: float, n: int) -> float:
    """Share of bootstrap fits under which n comparisons at d expect <= BUDGET false matches."""
    ok = sum(
        n * Line(a, r, sc, 0.0).impostor_rate(d) <= BUDGET * (1 + 1e-9) for a, r, sc in fits
    )
    return ok / len(fits) if fits else float("nan")


def shipped_check(imp: list[float], line: Line) -> list[dict]:
    """Observed impostor counts at or below a grid of distances, against the line's model."""
    rows = []
    t = line.anchor_distance
    while t == line.anchor_distance or t >= max(line.floor_distance, imp[0] - 0.05) - 1e-9:
        pred = len(imp) * line.impostor_rate(t)
        obs = count_at_most(imp, t)
        rows.append(
            {
                "distance": round(t, 4),
                "observed": obs,
                "predicted": pred,
                "p_at_least_observed": poisson_sf(obs, pred),
            }
        )
        t -= 0.05
    return rows


def floor_candidates(
    reuse: ReuseSet, line: Line, primary: TailFit, genuine: list[float]
) -> list[dict]:
    """What each multiple of 0.05 would catch and cost as the floor."""
    rows = []
    clean, everything = reuse.pooled(True), reuse.pooled(False)
    light = sorted(d for v in LIGHT_REENCODES for d in reuse.clean_by_variant.get(v, []))
    for i in range(1, 8):
        f = 0.05 * i
        rows.append(
            {
                "floor": round(f, 2),
                "reuse_clean": share_at_most(clean, f),
                "reuse_all": share_at_most(everything, f),
                "light_reencodes_clean": share_at_most(light, f),
                "genuine_primary": share_at_most(genuine, f),
                "impostor_rate": line.impostor_rate(f),
                "impostor_rate_primary_fit": primary.exp_rate(f),
            }
        )
    return rows


def propose(sets: list[dict], reuse: ReuseSet | None, q: float, share: float) -> dict:
    """The rule of the docs, from the primary (first) set.

    anchor: the lowest fitted anchor of any set, rounded down to 0.01 (a lower anchor at
    the same rate predicts more impostors everywhere below it); rate: q; floor: the
    smallest multiple of 0.05 at or below which lie `share` of the clean reuse copies (the
    dense watermark aside) and every clean JPEG re-encode at quality 90 or 70 (the shipped
    floor when no reuse file is given); scale: the primary set's identity-bootstrap 95th
    percentile (point estimate + 1.645 SE without a bootstrap), raised where another set's
    own fit would predict more impostors at the floor, rounded up to 0.001."""
    fits: list[TailFit] = [s["_fit"] for s in sets]
    anchor = round_down(min(f.anchor for f in fits), 0.01)
    floor = None
    if reuse and reuse.pooled(True):
        clean = reuse.pooled(True)
        light = [d for v in LIGHT_REENCODES for d in reuse.clean_by_variant.get(v, [])]
        i = 1
        while share_at_most(clean, 0.05 * i) < share or any(d > 0.05 * i for d in light):
            i += 1
        floor = round(0.05 * i, 2)
    boot = sets[0]["bootstrap"]
    base = boot["scale_5_50_95"][2] if boot else fits[0].scale + 1.645 * fits[0].scale_se
    need = {"primary_upper": base}
    f_eval = floor if floor is not None else 0.0
    for s, f in zip(sets, fits):
        # q e^((d-A)/S) >= rate_s e^((d-a_s)/s_s) at d = floor (both tails exponential).
        lhs = math.log(f.rate / q)
        need[s["name"]] = (anchor - f_eval) / ((f.anchor - f_eval) / f.scale - lhs)
    scale = round_up(max(need.values()), 0.001)
    return {
        "anchor_distance": anchor,
        "anchor_rate": q,
        "scale": round(scale, 3),
        "floor_distance": floor,
        "scale_needed": need,
    }


# ---------------------------------------------------------------------------------------
# Text report


def fmt_rate(x: float) -> str:
    return f"{x:.2e}"


def report(r: dict) -> str:
    out = []
    w = out.append
    ln = r["line"]
    w(f"# {r['pack']}: same_max {r['same_max_distance']}, budget {r['budget']} per search")
    w(
        f"line: anchor {ln['anchor_distance']} rate {ln['anchor_rate']:g} "
        f"scale {ln['scale']} floor {ln['floor_distance']}"
    )
    for s in r["sets"]:
        f = s["fit"]
        w("")
        w(
            f"## {s['name']}: {s['people']} people, {s['genuine']} genuine / {s['impostor']} "
            f"impostor pairs ({s['no_distance']} without a distance); lowest observable "
            f"rate {fmt_rate(s['lowest_observable_rate'])}"
        )
        w(
            "impostor quantiles: "
            + ", ".join(f"{k}: {v:.4f}" for k, v in s["impostor_quantiles"].items())
        )
        w(
            "lowest impostors: "
            + "; ".join(f"{d:.4f} {person(x)}/{person(y)}" for d, x, y in s["lowest_impostors"])
        )
        w(
            f"exponential tail: anchor {f['anchor']:.4f} (k={f['k']}, rate {f['rate']:.2e}, "
            f"{s['people_pairs_below_anchor']} pairs of people), scale {f['scale']:.4f} "
            f"(SE {f['scale_se']:.4f}), loglik {f['loglik_exp']:.1f}"
        )
        w(
            f"gaussian tail: mu {f['gauss_mu']:.4f} sigma {f['gauss_sigma']:.4f}, loglik "
            f"{f['loglik_gauss']:.1f}; at 1e-6 / 1e-8: exponential "
            f"{s['exp_distance_at']['1e-06']:.3f} / {s['exp_distance_at']['1e-08']:.3f}, gaussian "
            f"{s['gauss_distance_at']['1e-06']:.3f} / {s['gauss_distance_at']['1e-08']:.3f} "
            f"-> {s['slower_tail']} falls more slowly"
        )
        w(
            "fit check (count at or below d: observed / exponential / gaussian): "
            + "; ".join(
                f"{g['distance']:.3f}: {g['observed']} / {g['exponential']:.1f} / "
                f"{g['gaussian']:.1f}"
                for g in s["goodness"]
            )
        )
        h = s["holdout"]
        if h:
            w(
                f"hold-out ({h['splits']} halves of the people): scale 5/50/95 % "
                + " / ".join(f"{x:.4f}" for x in h["scale_5_50_95"])
                + "; other half, count at or below anchor - delta (observed / predicted, "
                "share of splits within Poisson 5 %): "
                + "; ".join(
                    f"-{b['delta']:.2f}: {b['observed']} / {b['predicted']:.1f}, "
                    f"{b['share_of_splits_consistent']:.0%}"
                    for b in h["below_anchor_minus"]
                )
            )
        b = s["bootstrap"]
        if b:
            w(
                f"identity bootstrap ({b['reps']}): anchor 5/50/95 % "
                + " / ".join(f"{x:.4f}" for x in b["anchor_5_50_95"])
                + ", scale "
                + " / ".join(f"{x:.4f}" for x in b["scale_5_50_95"])
                + ", distance at 1e-8 "
                + " / ".join(f"{x:.3f}" for x in b["distance_at_1e-8_5_50_95"])
                + "; shipped line within budget in "
                + ", ".join(f"{k}: {v:.0%}" for k, v in b["shipped_within_budget"].items())
                + " of resamples"
            )
        w(
            "shipped model (count at or below d: observed / predicted, P(X>=obs)): "
            + "; ".join(
                f"{c['distance']:.2f}: {c['observed']} / {c['predicted']:.2f}"
                + (f" (p {c['p_at_least_observed']:.3f})" if c["observed"] else "")
                for c in s["shipped_check"]
            )
        )
        w(
            "own fit's line vs shipped: "
            + "; ".join(
                f"{o['comparisons']:.0e}: {o['own']:.3f} / {o['shipped']:.3f}"
                for o in s["own_line_vs_shipped"]
            )
        )
    p = r["proposal"]
    w("")
    w(
        f"proposal: anchor {p['anchor_distance']} rate {p['anchor_rate']:g} scale "
        f"{p['scale']} floor {p['floor_distance']} (scale needed: "
        + ", ".join(f"{k} {v:.4f}" for k, v in p["scale_needed"].items())
        + ")"
    )
    w("")
    names = [s["name"] for s in r["sets"]]
    head = "| N | line | E[false matches] | E (primary fit) | " + " | ".join(
        f"genuine {n}" for n in names
    )
    reuse = "reuse_catch" in r["table"][0]
    if reuse:
        head += " | reuse (all) | reuse (clean) | dense watermark"
    w(head + " |")
    w("|" + "---|" * (head.count("|") + 1))
    for row in r["table"]:
        cells = [
            f"{row['comparisons']:.0e}",
            f"{row['line']:.3f}" + (f" ({row['at']})" if row["at"] else ""),
            f"{row['expected_false_matches']:.2g}",
            f"{row['expected_false_matches_primary_fit']:.2g}",
        ] + [f"{row['genuine_catch'][n]:.1%}" for n in names]
        if reuse:
            cells += [
                f"{row['reuse_catch']:.1%}",
                f"{row['reuse_catch_clean']:.1%}",
                f"{row['reuse_catch_stress']:.1%}",
            ]
        w("| " + " | ".join(cells) + " |")
    fl = r["floor"]
    w("")
    w(
        f"floor {fl['floor']}: modelled impostor rate {fmt_rate(fl['impostor_rate_shipped'])} "
        f"(primary point fit {fmt_rate(fl['impostor_rate_primary_fit'])}); expected false "
        "matches per search at the floor: "
        + ", ".join(f"N={k}: {v:.2g}" for k, v in fl["expected_false_matches_at_floor"].items())
    )
    w(
        "genuine pairs at or below the floor: "
        + ", ".join(f"{k} {v:.1%}" for k, v in fl["genuine_at_or_below_floor"].items())
        + "; lowest impostor: "
        + ", ".join(f"{k} {v:.4f}" for k, v in fl["lowest_impostor"].items())
    )
    if "candidates" in fl:
        w(
            "floor candidates: floor, reuse caught (clean / all / clean JPEG q90+q70), genuine "
            "pairs of the primary set at or below, impostor rate (shipped / primary fit)"
        )
        for c in fl["candidates"]:
            w(
                f"  {c['floor']:.2f}  {c['reuse_clean']:.1%} / {c['reuse_all']:.1%} / "
                f"{c['light_reencodes_clean']:.1%}  {c['genuine_primary']:.1%}  "
                f"{fmt_rate(c['impostor_rate'])} / {fmt_rate(c['impostor_rate_primary_fit'])}"
            )
    if "reuse" in fl:
        ru = fl["reuse"]
        w("reuse copies (distance to the original): n, median, p95, p99, max, at/below floor")
        for label in ("all", "clean", "stress"):
            x = ru[label]
            w(
                f"  {label:9s} {x['n']:4d} {x['median']:.3f} {x['p95']:.3f} {x['p99']:.3f} "
                f"{x['max']:.3f} {x['share_at_or_below_floor']:.1%}"
            )
        for v, x in ru["by_variant"].items():
            a, c = x["all"], x["clean"]
            w(
                f"  {v:9s} all {a['n']:3d} med {a['median']:.3f} max {a['max']:.3f} "
                f"floor {a['share_at_or_below_floor']:.1%} | clean {c['n']:3d} max "
                f"{c['max']:.3f} floor {c['share_at_or_below_floor']:.1%}"
                + (f" | no face {ru['no_face'][v]}" if ru["no_face"].get(v) else "")
            )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Pairs lists and reuse copies


def list_photos(folder: Path) -> list[str]:
    """Photo paths under a set's person folders, relative to the set, sorted."""
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for dirpath, _, files in os.walk(sub):
            for f in files:
                if f.lower().endswith(PHOTO_SUFFIXES):
                    found.append(os.path.relpath(os.path.join(dirpath, f), folder))
    return sorted(x.replace(os.sep, "/") for x in found)


def write_pairs(folder: Path, out: Path) -> tuple[int, int]:
    """Every pair of photos of a set (all against all), same = same first folder."""
    photos = list_photos(folder)
    n = 0
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file_x", "file_y", "same"])
        for a, b in itertools.combinations(photos, 2):
            w.writerow([a, b, int(person(a) == person(b))])
            n += 1
    return len(photos), n


def make_variants(shared: Path, celeb5_images: Path, out: Path, seed: int) -> tuple[int, int]:
    """60 photos (24 East-Asian, 18 LFW, 15 celeb5 incl. each person's smallest face the
    gate compares, 3 fr_examples), 12 copies each, and `pairs.csv` original -> copy.
    Originals are linked, not copied."""
    import io

    from PIL import Image, ImageDraw, ImageFont, ImageOps

    rng = random.Random(seed)

    def by_person(name: str) -> dict[str, list[str]]:
        d: dict[str, list[str]] = {}
        for f in list_photos(shared / name):
            d.setdefault(person(f), []).append(f)
        return d

    with open(celeb5_images, newline="", encoding="utf-8") as fh:
        eyes = {r["file"]: float(r["inter_eye_px"] or 0) for r in csv.DictReader(fh)}
    pick: list[tuple[str, str]] = []
    ea = by_person("lfw_eastasian_dev")
    for who in rng.sample(sorted(ea), 24):
        pick.append(("lfw_eastasian_dev", rng.choice(ea[who])))
    lfw = by_person("lfw_fold1")
    for who in rng.sample(sorted(set(lfw) - set(ea)), 18):
        pick.append(("lfw_fold1", rng.choice(lfw[who])))
    c5 = by_person("celeb5")
    for who in sorted(c5):
        ranked = sorted(c5[who], key=lambda f: eyes[f])
        small = next(f for f in ranked if eyes[f] >= 9)
        pick += [("celeb5", small)] + [
            ("celeb5", f) for f in rng.sample([f for f in ranked if f != small], 2)
        ]
    fr = by_person("fr_examples")
    for who in rng.sample(sorted(fr), 3):
        pick.append(("fr_examples", rng.choice(fr[who])))

    def font(size: int):
        return ImageFont.load_default(size=size)

    def text_layer(im, lines: list[tuple[int, str]], size: int, alpha: int):
        im = im.convert("RGBA")
        w, h = im.size
        layer = Image.new("RGBA", (w * 2, h * 2), (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        for y, text in lines:
            x = 0 if y >= 0 else w - draw.textlength(text, font=font(size)) / 2
            draw.text((x, abs(y)), text, font=font(size), fill=(255, 255, 255, alpha))
        layer = layer.rotate(30, resample=Image.BICUBIC)
        layer = layer.crop((w // 2, h // 2, w // 2 + w, h // 2 + h))
        return Image.alpha_composite(im, layer).convert("RGB")

    def watermark_line(im):
        # one line through the middle of the photo, 30 degrees, about 35 % opaque
        h = im.size[1]
        text = "COPY - FOR ID VERIFICATION ONLY - COPY"
        return text_layer(im, [(-(h - h // 20), text)], max(10, h // 10), 90)

    def watermark_dense(im):
        # the same text tiled over the whole photo, about 43 % opaque
        h = im.size[1]
        text = "COPY - FOR ID VERIFICATION ONLY  " * 6
        rows = [(y, text) for y in range(0, 2 * h, max(12, h // 8))]
        return text_layer(im, rows, max(10, h // 12), 110)

    def jpeg(im, q: int) -> bytes:
        b = io.BytesIO()
        im.convert("RGB").save(b, "JPEG", quality=q)
        return b.getvalue()

    def resized(im, f: float):
        w, h = im.size
        return im.resize((max(1, round(w * f)), max(1, round(h * f))), Image.LANCZOS)

    def crop5(im):
        w, h = im.size
        return im.crop((round(w * 0.05), round(h * 0.05), round(w * 0.95), round(h * 0.95)))

    kinds = {
        "jpeg90": lambda im: jpeg(im, 90),
        "jpeg70": lambda im: jpeg(im, 70),
        "jpeg50": lambda im: jpeg(im, 50),
        "jpeg30": lambda im: jpeg(im, 30),
        "resize050": lambda im: jpeg(resized(im, 0.5), 90),
        "resize075": lambda im: jpeg(resized(im, 0.75), 90),
        "resize150": lambda im: jpeg(resized(im, 1.5), 90),
        "crop5": lambda im: jpeg(crop5(im), 90),
        "watermark": lambda im: jpeg(watermark_line(im), 90),
        "wmdense": lambda im: jpeg(watermark_dense(im), 90),
        "grey": lambda im: jpeg(ImageOps.grayscale(im), 90),
        "w100": lambda im: jpeg(resized(im, 100 / im.width), 75) if im.width > 100 else None,
    }
    rows = []
    for set_name, f in pick:
        stem = os.path.splitext(os.path.basename(f))[0][:40]
        folder = out / f"{set_name}__{person(f)}"
        folder.mkdir(parents=True, exist_ok=True)
        src = shared / set_name / f
        orig = folder / f"{stem}__orig{os.path.splitext(f)[1]}"
        if not orig.exists():
            orig.symlink_to(src.resolve())
        im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
        for kind, make in kinds.items():
            data = make(im)
            if data is None:
                continue
            copy = folder / f"{stem}__{kind}.jpg"
            copy.write_bytes(data)
            rows.append([orig.relative_to(out).as_posix(), copy.relative_to(out).as_posix(), 1])
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file_x", "file_y", "same"])
        w.writerows(rows)
    return len(pick), len(rows)


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pairs", help="all-against-all pairs list of a set")
    p.add_argument("set_folder", type=Path)
    p.add_argument("out", type=Path)
    v = sub.add_parser("variants", help="reuse copies (needs Pillow)")
    v.add_argument("--shared", type=Path, required=True, help="../shared/faces")
    v.add_argument("--celeb5-images", type=Path, required=True, help="sface --per-image CSV")
    v.add_argument("--seed", type=int, default=20261210)
    v.add_argument("out", type=Path)
    f = sub.add_parser("fit", help="fit, check, propose and tabulate")
    f.add_argument("--pack", choices=sorted(SHIPPED), required=True)
    f.add_argument("--anchor", type=float, help="line to check (default: SHIPPED[pack])")
    f.add_argument("--rate", type=float)
    f.add_argument("--scale", type=float)
    f.add_argument("--floor", type=float)
    f.add_argument("--same-max", type=float, help="default: the pack's same band")
    f.add_argument("--anchor-quantile", type=float, default=0.01)
    f.add_argument("--floor-share", type=float, default=0.95, help="of clean reuse copies")
    f.add_argument("--splits", type=int, default=200, help="identity hold-out splits")
    f.add_argument("--bootstrap", type=int, default=0, help="identity bootstrap resamples")
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--reuse", help="per-pair CSV of the reuse copies")
    f.add_argument("--reuse-images", help="per-image CSV of the reuse copies")
    f.add_argument(
        "--drop-pair",
        action="append",
        metavar="PERSON/PERSON",
        help="leave out the pairs between these two people (repeatable)",
    )
    f.add_argument("--text", action="store_true", help="the text report only")
    f.add_argument("sets", nargs="+", help="per-pair CSVs ([NAME=]PATH), primary first")
    args = parser.parse_args(argv)
    if args.command == "pairs":
        photos, n = write_pairs(args.set_folder, args.out)
        print(f"{args.out}: {photos} photos, {n} pairs")
        return 0
    if args.command == "variants":
        photos, n = make_variants(args.shared, args.celeb5_images, args.out, args.seed)
        print(f"{args.out}: {photos} photos, {n} copies")
        return 0
    result = analyse(args)
    if not args.text:
        print(json.dumps(result, indent=1))
        print()
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
