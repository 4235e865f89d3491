//! The `wharf` binary: parses the command line and hands over to [`wharf::run`].

fn main() -> std::process::ExitCode {
    wharf::run()
}
