//! Row-wise f32 kernels of the encoder's packed forward pass (bias and residual fills,
//! activation, layer norm, attention over unpadded sequences) and its matrix products (faer,
//! accumulating into the pre-filled rows). Everything runs on rayon's pool, so no second thread
//! pool spins against the products (candle's element-wise ops have their own spinning pool:
//! 11 % of a MiniLM pass went to that spin).

use faer::linalg::matmul::matmul;
use faer::mat::{MatMut, MatRef};
use faer::{Accum, Par};
use rayon::prelude::*;

use crate::config::Act;
use crate::fastmath::gelu_one;

/// Runs `f` compiled for the best instruction set the CPU offers (AVX2 + FMA on x86-64-v3
/// machines): the baseline target only has 4-wide SSE2 and no FMA. The kernels `f` calls are
/// `#[inline(always)]` so that they are compiled inside the dispatched function.
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// Rows handed to one rayon task at least: below this a split costs more than it saves.
const MIN_ROWS_PER_TASK: usize = 8;

/// A dense layer: `Wᵀ` row-major (input, out), so the product reads it in the order gemm packs
/// it, and the bias.
pub(crate) struct Dense {
    pub wt: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Dense {
    pub fn input(&self) -> usize {
        self.wt.len() / self.out().max(1)
    }

    pub fn out(&self) -> usize {
        self.bias.len()
    }

    /// `dst += x · Wᵀ` for the rows of `x` (rows, input) and `dst` (rows, out).
    pub fn accumulate(&self, x: &[f32], dst: &mut [f32]) {
        let (input, out) = (self.input(), self.out());
        let rows = x.len() / input.max(1);
        debug_assert_eq!(dst.len(), rows * out);
        let lhs = MatRef::from_row_major_slice(x, rows, input);
        let rhs = MatRef::from_row_major_slice(&self.wt, input, out);
        let dst = MatMut::from_row_major_slice_mut(dst, rows, out);
        matmul(dst, Accum::Add, lhs, rhs, 1.0, Par::rayon(0));
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
    #[inline(always)]
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

/// Sets every row of `dst` to `bias`.
pub(crate) fn fill_rows(dst: &mut [f32], bias: &[f32]) {
    dst.par_chunks_mut(bias.len().max(1))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|row| row.copy_from_slice(bias));
}

/// Sets every row of `dst` to `bias + residual row`.
pub(crate) fn fill_rows_plus(dst: &mut [f32], bias: &[f32], residual: &[f32]) {
    let width = bias.len().max(1);
    dst.par_chunks_mut(width)
        .zip(residual.par_chunks(width))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|(row, r)| {
            simd(|| {
                for ((d, b), r) in row.iter_mut().zip(bias).zip(r) {
                    *d = b + r;
                }
            })
        });
}

/// `act(rows)` in place.
pub(crate) fn act_rows(rows: &mut [f32], width: usize, act: Act) {
    rows.par_chunks_mut(width.max(1))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|row| simd(|| act_in_place(act, row)));
}

/// `norm(rows)` in place (the embedding layer norm).
pub(crate) fn norm_rows(rows: &mut [f32], norm: &Norm) {
    rows.par_chunks_mut(norm.gamma.len().max(1))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|row| simd(|| norm.apply(row)));
}

#[inline(always)]
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

/// First row of each of the sequences laid end to end with these lengths.
pub(crate) fn starts(lens: &[usize]) -> Vec<usize> {
    lens.iter()
        .scan(0, |acc, &l| {
            let s = *acc;
            *acc += l;
            Some(s)
        })
        .collect()
}

/// Multi-head self-attention of sequences laid end to end: `qkv` rows are `[q | k | v]` (biases
/// added), `lens` the sequence lengths in order. Each token attends to its own sequence only,
/// so no padding is computed and no mask is needed. Writes the context rows (tokens, hidden).
pub(crate) fn attention(qkv: &[f32], lens: &[usize], hidden: usize, heads: usize, ctx: &mut [f32]) {
    let d = hidden / heads.max(1);
    let starts = starts(lens);
    let jobs: Vec<(usize, usize)> = (0..lens.len())
        .flat_map(|s| (0..heads).map(move |h| (s, h)))
        .collect();
    let shape = HeadShape { hidden, d };
    let outs: Vec<Vec<f32>> = jobs
        .par_iter()
        .map(|&(s, h)| simd(|| shape.attend(qkv, starts[s], lens[s], h)))
        .collect();
    for (&(s, h), out) in jobs.iter().zip(&outs) {
        for i in 0..lens[s] {
            let row = starts[s] + i;
            ctx[row * hidden + h * d..][..d].copy_from_slice(&out[i * d..][..d]);
        }
    }
}

struct HeadShape {
    hidden: usize,
    /// Width of one head.
    d: usize,
}

impl HeadShape {
    /// One head of one sequence: softmax(q kᵀ / √d) v, as (len, d) rows.
    #[inline(always)]
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

#[inline(always)]
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
#[inline(always)]
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
#[inline(always)]
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
        let mut ctx = vec![0f32; 3 * hidden];
        attention(&qkv, &lens, hidden, heads, &mut ctx);
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
