//! The deterministic inputs of §1.7 of `docs/xet.md` and what hf_xet 1.8.0 computed for them
//! (cross-checked: hf_xet's uploads == Wharf's recomputation). Used by this crate's tests and
//! available to other crates' tests; cheap to generate (a few milliseconds).

/// Size of `det.bin`: 3 MiB + 1234.
pub const DET_SIZE: usize = 3 * 1024 * 1024 + 1234;
/// Chunks of `det.bin` and the first five chunk sizes.
pub const DET_CHUNKS: usize = 54;
pub const DET_FIRST_SIZES: [usize; 5] = [23426, 19027, 48474, 56779, 101000];
pub const DET_FILE_HASH: &str = "93e872e700b1fcf63bd4ececb99dcb92c82930236775c0cd3177c3b1a9f08df6";
pub const DET_XORB_HASH: &str = "5d8d74fff21a49bf3e66d5854e81bd6c2efea4e757846885a66a7666e038733f";
pub const DET_SHA256: &str = "03ed3d733ff79f7aa03487a733e9edf750eed7b29643674f9e6d265e2d12ae97";
pub const DET_FIRST_CHUNK_HASH: &str =
    "3a4c23f41105f7d9ed5e6ba367dc5aa219c184f065448abadeb77ce4d3f4e674";

/// Size of `floats.bin`: 4 MiB.
pub const FLOATS_SIZE: usize = 4 * 1024 * 1024;
pub const FLOATS_CHUNKS: usize = 63;
pub const FLOATS_FIRST_SIZES: [usize; 5] = [11798, 131072, 36226, 77464, 131072];
pub const FLOATS_FILE_HASH: &str =
    "74a40d494287f19e5bf1076647721e0d79181b5bbecf6d8021368442647c9f63";
pub const FLOATS_XORB_HASH: &str =
    "b3f150170307ff6ea207112263e411238bb28d472a66e2225489e3fbe70e35a6";
pub const FLOATS_SHA256: &str = "af84247313202957f93a0f15432f6ae4fc4a817bdadb4671280c29431ceff0d4";
/// Bytes hf_xet uploaded for the floats xorb (all 63 chunks BG4+LZ4), and Wharf's stored size
/// with the footer.
pub const FLOATS_UPLOADED_BYTES: usize = 2_496_531;
pub const FLOATS_STORED_BYTES: usize = 2_499_147;

/// `det.bin`: xorshift64 from `0x9E3779B97F4A7C15` (`s ^= s << 13; s ^= s >> 7; s ^= s << 17`,
/// each state emitted little-endian), truncated to [`DET_SIZE`].
pub fn det_bin() -> Vec<u8> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(DET_SIZE + 8);
    while out.len() < DET_SIZE {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.truncate(DET_SIZE);
    out
}

/// `floats.bin`: `sin(i / 1000)` computed in `f64`, stored as little-endian `f32`, for
/// `i = 0..`, [`FLOATS_SIZE`] bytes (sha256 [`FLOATS_SHA256`]).
pub fn floats_bin() -> Vec<u8> {
    (0..FLOATS_SIZE / 4)
        .flat_map(|i| ((i as f64 / 1000.0).sin() as f32).to_le_bytes())
        .collect()
}
