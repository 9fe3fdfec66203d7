use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::mem::size_of;

use crate::kernel::{for_each_dot, BLOCK};
use crate::quant::{check_template, encode_query, Meta, QueryCode, NORM_ROUNDING, SLACK};
use crate::{IndexError, Metric};

/// Largest dimension an index accepts. Beyond it the query codes would have to be
/// coarsened below 8 bits to keep the kernel's `i32` sums from overflowing.
pub const MAX_DIM: usize = 65_536;

/// One search hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The stored template's key (a portrait id).
    pub key: i64,
    /// The person the template belongs to.
    pub owner: i64,
    /// The *approximate* distance from the query, computed from the int8 codes. The
    /// exact distance can differ by the quantisation bound (see the crate docs):
    /// callers that decide on a threshold should re-check with the full template.
    pub distance: f32,
}

/// An in-memory 1:N index of face templates, quantised to int8.
///
/// Storage is column-wise (one contiguous code array, one array per scalar) so that a
/// search is a single sequential pass over memory; slots are kept dense by
/// `swap_remove`, and a key → slot map makes replace and remove O(1).
#[derive(Clone)]
pub struct TemplateIndex {
    dim: usize,
    /// `dim` rounded up to the kernel's block; the padding codes are always zero.
    stride: usize,
    metric: Metric,
    codes: Vec<i8>,
    meta: Vec<Meta>,
    keys: Vec<i64>,
    owners: Vec<i64>,
    slots: HashMap<i64, usize>,
}

impl fmt::Debug for TemplateIndex {
    /// Sizes only: the codes are biometric data and far too long to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("len", &self.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

/// A heap entry for `nearest`: the largest (worst) `(score, key)` is on top.
struct Ranked {
    score: f64,
    key: i64,
    slot: usize,
}

impl Ranked {
    fn cmp_key(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.key.cmp(&other.key))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_key(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_key(other)
    }
}

impl TemplateIndex {
    /// An empty index for templates of `dim` values.
    ///
    /// # Panics
    ///
    /// If `dim` is above [`MAX_DIM`]: the dimension is configuration, not input. A
    /// `dim` of 0 is allowed (every template is then empty: refused under Cosine, all at
    /// distance 0 under Euclidean), so a caller sizing the index from data cannot panic.
    pub fn new(dim: usize, metric: Metric) -> Self {
        Self::with_capacity(dim, metric, 0)
    }

    /// An empty index with room for `capacity` templates, so that building a large
    /// index neither reallocates nor ends with up to twice the memory it needs.
    ///
    /// # Panics
    ///
    /// If `dim` is above [`MAX_DIM`].
    pub fn with_capacity(dim: usize, metric: Metric, capacity: usize) -> Self {
        assert!(
            dim <= MAX_DIM,
            "template dimension must be at most {MAX_DIM}"
        );
        // At least one block, so that every template has a (possibly all-padding) row
        // and the scan visits it.
        let stride = dim.div_ceil(BLOCK).max(1) * BLOCK;
        Self {
            dim,
            stride,
            metric,
            codes: Vec::with_capacity(capacity * stride),
            meta: Vec::with_capacity(capacity),
            keys: Vec::with_capacity(capacity),
            owners: Vec::with_capacity(capacity),
            slots: HashMap::with_capacity(capacity),
        }
    }

    /// The number of values in each template.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How distances are measured.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The number of stored templates.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no template is stored.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds or replaces the template stored under `key` (a portrait id), belonging to `owner` (a person id).
    ///
    /// A replaced template may change owner. On error the index is unchanged.
    pub fn insert(&mut self, key: i64, owner: i64, template: &[f32]) -> Result<(), IndexError> {
        self.check_dim(template)?;
        let checked = check_template(self.metric, template)?;
        let stride = self.stride;
        let slot = match self.slots.get(&key) {
            Some(&slot) => slot,
            None => {
                let slot = self.keys.len();
                self.codes.resize((slot + 1) * stride, 0);
                self.meta.push(Meta {
                    scale: 0.0,
                    norm: 0.0,
                    err_l2: 0.0,
                    err_max: 0.0,
                });
                self.keys.push(key);
                self.owners.push(owner);
                self.slots.insert(key, slot);
                slot
            }
        };
        let row = &mut self.codes[slot * stride..(slot + 1) * stride];
        self.meta[slot] = checked.write(template, row);
        self.owners[slot] = owner;
        Ok(())
    }

    /// Removes the template stored under `key`; false if there was none. O(1): the
    /// last template moves into the freed slot.
    pub fn remove(&mut self, key: i64) -> bool {
        match self.slots.remove(&key) {
            Some(slot) => {
                self.remove_slot(slot);
                true
            }
            None => false,
        }
    }

    /// Removes all of a person's templates and returns how many there were.
    ///
    /// Scans the owner column instead of keeping an owner → keys map: a map would cost
    /// ~50–80 bytes a person (a quarter of the index again at one template a person),
    /// while the scan reads 8 bytes a template, about a millisecond per million.
    pub fn remove_owner(&mut self, owner: i64) -> usize {
        let mut removed = 0;
        let mut slot = 0;
        while slot < self.owners.len() {
            if self.owners[slot] == owner {
                self.slots.remove(&self.keys[slot]);
                // The last template moves into `slot`, so it is examined next.
                self.remove_slot(slot);
                removed += 1;
            } else {
                slot += 1;
            }
        }
        removed
    }

    /// Whether a template is stored under `key`.
    pub fn contains(&self, key: i64) -> bool {
        self.slots.contains_key(&key)
    }

    /// The owner of the template stored under `key`.
    pub fn owner_of(&self, key: i64) -> Option<i64> {
        self.slots.get(&key).map(|&slot| self.owners[slot])
    }

    /// Every stored template whose EXACT distance to `query` is ≤ `max_distance`,
    /// minus those of `exclude_owner`, is returned (a guaranteed superset: some
    /// returned ones may be slightly farther). Sorted by approximate distance
    /// ascending, then key.
    ///
    /// "Exact" means the distance between the `f32` values as given, in real
    /// arithmetic; the crate docs derive the bound that makes this hold. A negative
    /// `max_distance` finds nothing; `+∞` finds everything; NaN is refused.
    pub fn search(
        &self,
        query: &[f32],
        max_distance: f32,
        exclude_owner: Option<i64>,
    ) -> Result<Vec<Candidate>, IndexError> {
        if max_distance.is_nan() {
            return Err(IndexError::NotFinite);
        }
        let q = self.encode_query(query)?;
        let mut out = Vec::new();
        if max_distance < 0.0 {
            return Ok(out);
        }
        let t = f64::from(max_distance);
        let mut keep = |slot: usize, a: f64, m: &Meta| {
            let owner = self.owners[slot];
            if exclude_owner != Some(owner) {
                let score = self.score(m, a);
                out.push(Candidate {
                    key: self.keys[slot],
                    owner,
                    distance: self.distance(&q, score),
                });
            }
        };
        match self.metric {
            Metric::Cosine => {
                // cos distance ≤ T  ⇔  q·ŷ ≥ (1 − T)‖q‖, and q·ŷ ≤ a + E.
                let floor = (1.0 - t) * q.norm - SLACK * q.norm;
                for_each_dot(&q.codes, &self.codes, self.stride, |slot, d| {
                    let m = &self.meta[slot];
                    let a = q.approx_dot(m, d);
                    if a + q.dot_error(m) >= floor {
                        keep(slot, a, m);
                    }
                });
            }
            Metric::Euclidean => {
                // ‖q − x‖ ≤ T  ⇔  q·x ≥ (‖q‖² + ‖x‖² − T²)/2, and q·x ≤ a + E; the
                // slack covers f64 rounding and the f32 rounding of stored ‖x‖.
                let nq2 = q.norm * q.norm;
                let base = 0.5 * nq2 - 0.5 * t * t - SLACK * nq2;
                let per_norm_sq = 0.5 - SLACK - NORM_ROUNDING;
                for_each_dot(&q.codes, &self.codes, self.stride, |slot, d| {
                    let m = &self.meta[slot];
                    let a = q.approx_dot(m, d);
                    let n = f64::from(m.norm);
                    if a + q.dot_error(m) >= base + per_norm_sq * n * n {
                        keep(slot, a, m);
                    }
                });
            }
        }
        out.sort_unstable_by(|x, y| x.distance.total_cmp(&y.distance).then(x.key.cmp(&y.key)));
        Ok(out)
    }

    /// The k nearest by approximate distance, excluding `exclude_owner`, closest first.
    ///
    /// Ranking is by the same approximate distance [`search`](Self::search) reports,
    /// so the result is the first `k` of `search(query, +∞, exclude_owner)` (up to the
    /// order of equal distances). Because each approximate distance is within the
    /// quantisation bound of the exact one, a template can be missing from the
    /// result only if all `k` returned ones are at most twice that bound farther away
    /// than it (exactly); near-duplicates are always ranked correctly.
    pub fn nearest(
        &self,
        query: &[f32],
        k: usize,
        exclude_owner: Option<i64>,
    ) -> Result<Vec<Candidate>, IndexError> {
        let q = self.encode_query(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k.min(self.len()) + 1);
        for_each_dot(&q.codes, &self.codes, self.stride, |slot, d| {
            let m = &self.meta[slot];
            let score = self.score(m, q.approx_dot(m, d));
            if heap.len() == k {
                // Cheap reject first: almost every template is worse than the k-th.
                if heap.peek().is_some_and(|worst| score > worst.score) {
                    return;
                }
            }
            if exclude_owner == Some(self.owners[slot]) {
                return;
            }
            let item = Ranked {
                score,
                key: self.keys[slot],
                slot,
            };
            if heap.len() < k {
                heap.push(item);
            } else if let Some(mut worst) = heap.peek_mut() {
                if item < *worst {
                    *worst = item;
                }
            }
        });
        let mut out: Vec<Candidate> = heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| Candidate {
                key: r.key,
                owner: self.owners[r.slot],
                distance: self.distance(&q, r.score),
            })
            .collect();
        // Distances are monotone in the score but may tie after rounding to f32;
        // order ties by key, as `search` does.
        out.sort_by(|x, y| x.distance.total_cmp(&y.distance).then(x.key.cmp(&y.key)));
        Ok(out)
    }

    /// Bytes held (codes, per-template scalars, keys, maps), estimated from capacities.
    ///
    /// The key map is estimated from its capacity the way `std`'s hash table lays it
    /// out (a power-of-two bucket count, each bucket one entry plus a control byte).
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + self.codes.capacity()
            + self.meta.capacity() * size_of::<Meta>()
            + self.keys.capacity() * size_of::<i64>()
            + self.owners.capacity() * size_of::<i64>()
            + hash_map_bytes(self.slots.capacity(), size_of::<(i64, usize)>())
    }

    /// Reserves room for `additional` more templates.
    pub fn reserve(&mut self, additional: usize) {
        self.codes.reserve(additional * self.stride);
        self.meta.reserve(additional);
        self.keys.reserve(additional);
        self.owners.reserve(additional);
        self.slots.reserve(additional);
    }

    /// Gives back spare capacity, e.g. after a bulk load or a large removal.
    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.meta.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.owners.shrink_to_fit();
        self.slots.shrink_to_fit();
    }

    fn check_dim(&self, v: &[f32]) -> Result<(), IndexError> {
        if v.len() == self.dim {
            Ok(())
        } else {
            Err(IndexError::DimensionMismatch {
                expected: self.dim,
                got: v.len(),
            })
        }
    }

    fn encode_query(&self, query: &[f32]) -> Result<QueryCode, IndexError> {
        self.check_dim(query)?;
        encode_query(self.metric, query, self.stride)
    }

    /// A rank key, smaller is closer, cheap enough to compute for every template:
    /// Cosine `−a` (stored vectors are unit length), Euclidean `‖x‖² − 2a`.
    #[inline(always)]
    fn score(&self, m: &Meta, a: f64) -> f64 {
        match self.metric {
            Metric::Cosine => -a,
            Metric::Euclidean => {
                let n = f64::from(m.norm);
                n * n - 2.0 * a
            }
        }
    }

    /// The approximate distance for a score; monotone in the score, so ranking by
    /// score and by distance agree.
    fn distance(&self, q: &QueryCode, score: f64) -> f32 {
        match self.metric {
            Metric::Cosine => (1.0 + score / q.norm).clamp(0.0, 2.0) as f32,
            Metric::Euclidean => (q.norm * q.norm + score).max(0.0).sqrt() as f32,
        }
    }

    /// Moves the last template into `slot` and drops the last; the caller has already
    /// removed `slot`'s key from the map.
    fn remove_slot(&mut self, slot: usize) {
        let last = self.keys.len() - 1;
        if slot != last {
            let s = self.stride;
            self.codes.copy_within(last * s..(last + 1) * s, slot * s);
            self.slots.insert(self.keys[last], slot);
        }
        self.codes.truncate(last * self.stride);
        self.meta.swap_remove(slot);
        self.keys.swap_remove(slot);
        self.owners.swap_remove(slot);
    }
}

/// `std`'s `HashMap` (hashbrown) stores `capacity` entries in a power-of-two number of
/// buckets at most 7/8 full, one control byte per bucket plus a 16-byte trailer.
fn hash_map_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * (entry + 1) + 16
}
