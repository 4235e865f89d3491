//! The exact (erf-based) GELU of BERT-family models, computed with branch-free polynomial
//! approximations the compiler vectorises. candle's `gelu_erf` calls a scalar libm `erf` per
//! element, which was 13 % of a MiniLM forward pass; this is within 2e-7 of it.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// `e^v` for `v <= 0` (clamped at -87, where f32 underflows anyway): range reduction to
/// `2^n · e^r` with |r| <= ln2/2 and a degree-6 polynomial (relative error ~2e-7).
/// Elements from which the work is split over two threads.
const PARALLEL_FROM: usize = 64 * 1024;

#[inline(always)]
fn exp_neg(v: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to the nearest integer in the low mantissa bits, without a
    // call to `floor` (no SSE4.1 in the baseline target) and without a float→int cast.
    const ROUND: f32 = 12_582_912.0;
    let v = v.clamp(-87.0, 0.0);
    let n = (v * LOG2E + ROUND) - ROUND;
    let r = v - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // n + 127 is in [1, 127]: as the low bits of 2^23 + (n + 127) it is read as an integer.
    let biased = (n + 127.0 + 8_388_608.0).to_bits() & 0x007f_ffff;
    p * f32::from_bits(biased << 23)
}

/// erf(x), Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp_neg(-a * a);
    y.copysign(x)
}

#[inline(always)]
pub(crate) fn gelu_one(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

fn gelu_slice(src: &[f32]) -> Vec<f32> {
    // Two halves on two threads once the work outweighs a thread start (~20 µs).
    if src.len() < PARALLEL_FROM {
        return src.iter().map(|&x| gelu_one(x)).collect();
    }
    let mut out = vec![0f32; src.len()];
    let mid = src.len() / 2;
    let (s1, s2) = src.split_at(mid);
    let (o1, o2) = out.split_at_mut(mid);
    let fill = |o: &mut [f32], s: &[f32]| {
        for (o, &x) in o.iter_mut().zip(s) {
            *o = gelu_one(x);
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| fill(o2, s2));
        fill(o1, s1);
    });
    out
}

struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "wharf-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            return Err(candle_core::Error::Msg("gelu: f32 tensors only".into()));
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            return Err(candle_core::Error::Msg(
                "gelu: contiguous tensors only".into(),
            ));
        };
        let src = data
            .get(start..end)
            .ok_or_else(|| candle_core::Error::Msg("gelu: layout out of bounds".into()))?;
        Ok((CpuStorage::F32(gelu_slice(src)), layout.shape().clone()))
    }
}

/// Exact GELU; other dtypes or layouts fall back to candle's own.
pub(crate) fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if xs.dtype() == candle_core::DType::F32 && xs.is_contiguous() && xs.device().is_cpu() {
        xs.apply_op1_no_bwd(&GeluErf)
    } else {
        xs.gelu_erf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_matches_candles_exact_gelu() {
        let xs: Vec<f32> = (0..200_001)
            .map(|i| (i as f32 - 100_000.0) / 8_000.0)
            .collect();
        let t =
            Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let ours = gelu_erf(&t)
            .and_then(|t| t.to_vec1::<f32>())
            .unwrap_or_else(|e| panic!("{e}"));
        let reference = t
            .gelu_erf()
            .and_then(|t| t.to_vec1::<f32>())
            .unwrap_or_else(|e| panic!("{e}"));
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "worst relative error {worst}");
    }

    #[test]
    fn exp_neg_is_accurate_and_safe_at_the_ends() {
        for i in 0..=8700 {
            let v = -(i as f32) / 100.0;
            let rel = (exp_neg(v) - v.exp()).abs() / v.exp().max(f32::MIN_POSITIVE);
            assert!(rel < 1e-6 || v.exp() < 1e-37, "v={v} rel={rel}");
        }
        assert_eq!(exp_neg(-1000.0), exp_neg(-87.0));
        assert!(erf(f32::INFINITY) == 1.0 && erf(f32::NEG_INFINITY) == -1.0);
    }
}
