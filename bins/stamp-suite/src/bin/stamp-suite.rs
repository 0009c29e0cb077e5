//! `stamp-suite`: reflector with `-i`, sender otherwise.
fn main() -> std::process::ExitCode {
    stamp_suite::main_for(None)
}
