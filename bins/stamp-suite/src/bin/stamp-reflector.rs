//! `stamp-reflector`: the Session-Reflector.
fn main() -> std::process::ExitCode {
    stamp_suite::main_for(Some(stamp_config::Role::Reflector))
}
