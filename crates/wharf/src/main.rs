//! The `wharf` binary: parses the command line and hands over to [`wharf::run`].

/// mimalloc keeps freed pages for reuse: with the system allocator every large tensor of an
/// inference pass was a fresh mmap whose pages the kernel zeroed again (~8 % of a MiniLM
/// forward pass); it measured 15–19 % more embeddings per second (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wharf::run()
}
