//! Row-wise f32 kernels of the encoder's packed forward pass (bias, activation, residual + layer
//! norm, attention over unpadded sequences). They run on rayon's pool, the pool gemm already
//! uses for the matrix products, so no second thread pool spins against it (candle's element-wise
//! ops use their own spinning pool: 11 % of a MiniLM pass went to that spin).

use std::ops::{Deref, Range};

use candle_core::{CpuStorage, Storage, StorageRef, Tensor};
use rayon::prelude::*;

use crate::config::Act;
use crate::fastmath::gelu_one;

/// Rows handed to one rayon task at least: below this a split costs more than it saves.
const MIN_ROWS_PER_TASK: usize = 8;

/// Read access to the contiguous f32 data of a CPU tensor, without a copy.
pub(crate) struct HostView<'a> {
    storage: StorageRef<'a>,
    range: Range<usize>,
}

impl<'a> HostView<'a> {
    pub fn of(t: &'a Tensor) -> candle_core::Result<HostView<'a>> {
        let (storage, layout) = t.storage_and_layout();
        let Some((start, end)) = layout.contiguous_offsets() else {
            return Err(candle_core::Error::Msg(
                "expected a contiguous tensor".into(),
            ));
        };
        match &*storage {
            Storage::Cpu(CpuStorage::F32(v)) if end <= v.len() => {}
            _ => {
                return Err(candle_core::Error::Msg(
                    "expected an f32 tensor on the CPU".into(),
                ));
            }
        }
        Ok(HostView {
            storage,
            range: start..end,
        })
    }
}

impl Deref for HostView<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &*self.storage {
            // Checked in `of`: the storage is f32 on the CPU and holds the range.
            Storage::Cpu(CpuStorage::F32(v)) => &v[self.range.clone()],
            _ => &[],
        }
    }
}

/// A layer norm's parameters on the host.
pub(crate) struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

impl Norm {
    /// Normalises one row in place.
    fn apply(&self, row: &mut [f32]) {
        let n = row.len().max(1) as f32;
        let mean = sum(row) / n;
        let var = row.iter().map(|&x| (x - mean) * (x - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *x = (*x - mean) * inv * g + b;
        }
    }
}

/// Applies `f(row, src_row, dst_row)` to every `width`-wide row of `src`, in parallel.
fn map_rows(
    src: &[f32],
    width: usize,
    f: impl Fn(usize, &[f32], &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut out = vec![0f32; src.len()];
    out.par_chunks_mut(width.max(1))
        .zip(src.par_chunks(width.max(1)))
        .enumerate()
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|(i, (dst, s))| f(i, s, dst));
    out
}

/// `product + bias` row by row.
pub(crate) fn add_bias(product: &[f32], bias: &[f32]) -> Vec<f32> {
    map_rows(product, bias.len(), |_, s, d| {
        for ((d, s), b) in d.iter_mut().zip(s).zip(bias) {
            *d = s + b;
        }
    })
}

/// `act(product + bias)` row by row.
pub(crate) fn add_bias_act(product: &[f32], bias: &[f32], act: Act) -> Vec<f32> {
    map_rows(product, bias.len(), |_, s, d| {
        for ((d, s), b) in d.iter_mut().zip(s).zip(bias) {
            *d = s + b;
        }
        act_in_place(act, d);
    })
}

/// `norm(product + bias + residual)` row by row: the post-LN step after attention and after the
/// feed-forward block.
pub(crate) fn add_residual_norm(
    product: &[f32],
    bias: &[f32],
    residual: &[f32],
    norm: &Norm,
) -> Vec<f32> {
    let width = bias.len();
    map_rows(product, width, |i, s, d| {
        let r = &residual[i * width..(i + 1) * width];
        for (((d, s), b), r) in d.iter_mut().zip(s).zip(bias).zip(r) {
            *d = s + b + r;
        }
        norm.apply(d);
    })
}

/// `norm(rows)` in place (the embedding layer norm).
pub(crate) fn norm_rows(rows: &mut [f32], norm: &Norm) {
    rows.par_chunks_mut(norm.gamma.len().max(1))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|row| norm.apply(row));
}

pub(crate) fn act_in_place(act: Act, xs: &mut [f32]) {
    match act {
        Act::Gelu => xs.iter_mut().for_each(|x| *x = gelu_one(*x)),
        Act::GeluTanh => xs.iter_mut().for_each(|x| {
            let v = *x;
            let inner = (2.0 / std::f32::consts::PI).sqrt() * (v + 0.044_715 * v * v * v);
            *x = 0.5 * v * (1.0 + inner.tanh());
        }),
        Act::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
        Act::Tanh => xs.iter_mut().for_each(|x| *x = x.tanh()),
    }
}

/// Multi-head self-attention of sequences laid end to end: `qkv` rows are `[q | k | v]` (biases
/// added), `lens` the sequence lengths in order. Each token attends to its own sequence only,
/// so no padding is computed and no mask is needed. Returns the context rows (tokens, hidden).
pub(crate) fn attention(qkv: &[f32], lens: &[usize], hidden: usize, heads: usize) -> Vec<f32> {
    let d = hidden / heads.max(1);
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |acc, &l| {
            let s = *acc;
            *acc += l;
            Some(s)
        })
        .collect();
    let jobs: Vec<(usize, usize)> = (0..lens.len())
        .flat_map(|s| (0..heads).map(move |h| (s, h)))
        .collect();
    let shape = HeadShape { hidden, d };
    let outs: Vec<Vec<f32>> = jobs
        .par_iter()
        .map(|&(s, h)| shape.attend(qkv, starts[s], lens[s], h))
        .collect();
    let total: usize = lens.iter().sum();
    let mut ctx = vec![0f32; total * hidden];
    for (&(s, h), out) in jobs.iter().zip(&outs) {
        for i in 0..lens[s] {
            let row = starts[s] + i;
            ctx[row * hidden + h * d..][..d].copy_from_slice(&out[i * d..][..d]);
        }
    }
    ctx
}

struct HeadShape {
    hidden: usize,
    /// Width of one head.
    d: usize,
}

impl HeadShape {
    /// One head of one sequence: softmax(q kᵀ / √d) v, as (len, d) rows.
    fn attend(&self, qkv: &[f32], start: usize, len: usize, head: usize) -> Vec<f32> {
        let (h, d) = (self.hidden, self.d);
        let at = |row: usize, part: usize| &qkv[(start + row) * 3 * h + part * h + head * d..][..d];
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; len * d];
        let mut p = vec![0f32; len];
        for i in 0..len {
            let q = at(i, 0);
            for (j, pj) in p.iter_mut().enumerate() {
                *pj = dot(q, at(j, 1)) * scale;
            }
            softmax_in_place(&mut p);
            let o = &mut out[i * d..][..d];
            for (j, &pj) in p.iter().enumerate() {
                for (o, v) in o.iter_mut().zip(at(j, 2)) {
                    *o += pj * v;
                }
            }
        }
        out
    }
}

fn softmax_in_place(p: &mut [f32]) {
    let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for x in p.iter_mut() {
        *x = (*x - max).exp();
        total += *x;
    }
    let inv = 1.0 / total;
    p.iter_mut().for_each(|x| *x *= inv);
}

/// Dot product in eight independent lanes, so the compiler vectorises it (a plain float sum
/// is a serial dependency chain it may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0f32; 8];
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Sum in eight lanes (see `dot`).
fn sum(a: &[f32]) -> f32 {
    let c = a.chunks_exact(8);
    let tail: f32 = c.remainder().iter().sum();
    let mut acc = [0f32; 8];
    for x in c {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_sum_match_plain_loops() {
        for n in [0, 1, 7, 8, 9, 32, 45] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "n={n}");
            assert!((sum(&a) - a.iter().sum::<f32>()).abs() < 1e-5, "n={n}");
        }
    }

    #[test]
    fn norm_gives_zero_mean_unit_variance() {
        let norm = Norm {
            gamma: vec![1.0; 16],
            beta: vec![0.0; 16],
            eps: 1e-12,
        };
        let mut rows: Vec<f32> = (0..64).map(|i| (i * i % 13) as f32).collect();
        norm_rows(&mut rows, &norm);
        for row in rows.chunks(16) {
            let mean = row.iter().sum::<f32>() / 16.0;
            let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / 16.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
    }

    #[test]
    fn attention_stays_inside_each_sequence() {
        // Two sequences; a one-token sequence can only attend to itself, so its context is its
        // own value row, whatever the other sequence holds.
        let (hidden, heads) = (4, 2);
        let lens = [2, 1];
        let mut qkv = vec![0f32; 3 * 3 * hidden];
        for (i, x) in qkv.iter_mut().enumerate() {
            *x = (i as f32 * 0.7).sin();
        }
        let ctx = attention(&qkv, &lens, hidden, heads);
        let own_v = &qkv[2 * 3 * hidden + 2 * hidden..][..hidden];
        assert_eq!(&ctx[2 * hidden..], own_v);
        // Rows of the first sequence are convex mixes of its two value rows.
        for c in 0..hidden {
            let (v0, v1) = (qkv[2 * hidden + c], qkv[3 * hidden + 2 * hidden + c]);
            let x = ctx[c];
            assert!(x >= v0.min(v1) - 1e-6 && x <= v0.max(v1) + 1e-6);
        }
    }
}
