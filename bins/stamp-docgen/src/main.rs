//! `stamp-docgen`: writes the documents generated from the clap definitions
//! of `stamp_config::Cli`, so the man pages, the shell completions and the
//! flag reference in `doc/usage.md` cannot drift from the real command line.
//!
//! ```text
//! stamp-docgen            rewrite every generated file
//! stamp-docgen --check    exit 1 if a committed file differs (CI, tests)
//! stamp-docgen --root DIR use DIR as the workspace root
//! ```
//!
//! Generated: `doc/man/{stamp-suite,stamp-reflector,stamp-sender}.1`,
//! `doc/completions/` (bash, zsh, fish for each binary) and the part of
//! `doc/usage.md` between [`BEGIN`] and [`END`].
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgAction, Command, CommandFactory};
use clap_complete::{Generator, Shell};
use stamp_config::Cli;

/// Start of the generated part of `doc/usage.md`.
const BEGIN: &str = "<!-- BEGIN GENERATED FLAGS -->";
/// End of the generated part of `doc/usage.md`.
const END: &str = "<!-- END GENERATED FLAGS -->";

/// The binaries: name, one-line description (the man page's NAME section)
/// and what their man page says about the role.
const BINARIES: [(&str, &str, &str); 3] = [
    (
        "stamp-suite",
        "STAMP (RFC 8762 / RFC 8972) Session-Sender and Session-Reflector",
        "Runs a Session-Reflector with -i (--is-reflector), a Session-Sender otherwise.",
    ),
    (
        "stamp-reflector",
        "STAMP (RFC 8762 / RFC 8972) Session-Reflector",
        "The Session-Reflector: the same flags as stamp-suite, with -i implied.",
    ),
    (
        "stamp-sender",
        "STAMP (RFC 8762 / RFC 8972) Session-Sender",
        "The Session-Sender: the same flags as stamp-suite; -i is refused.",
    ),
];

/// Flags the command line and the config file accept, and the loader
/// validates, but that no driver acts on yet (checked against
/// `bins/stamp-suite/src/*.rs` and the plugin crates). Remove a flag here in
/// the change that implements it; the generated table then stops saying so.
const NOT_YET_IMPLEMENTED: &[&str] = &[];

/// Config keys that are tables in the file and have no `STAMP_*` form.
const TABLE_KEYS: &[&str] = &["tlv_code", "tlv_opt"];

fn main() -> ExitCode {
    let mut check = false;
    let mut root: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--root" => match args.next() {
                Some(dir) => root = Some(PathBuf::from(dir)),
                None => return usage("--root needs a directory"),
            },
            "-h" | "--help" => {
                println!("usage: stamp-docgen [--check] [--root DIR]");
                println!(
                    "Writes doc/man/*.1, doc/completions/* and the flag reference of doc/usage.md"
                );
                println!(
                    "from the clap definitions; --check only compares and exits 1 on a difference."
                );
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let root = root.unwrap_or_else(default_root);
    let files = match generate(&root) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("stamp-docgen: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        check_files(&root, &files)
    } else {
        write_files(&root, &files)
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("stamp-docgen: {msg} (usage: stamp-docgen [--check] [--root DIR])");
    ExitCode::from(2)
}

/// The workspace root this binary was built from.
fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every generated file, by path relative to the root, with its content.
fn generate(root: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    for (bin, about, role) in BINARIES {
        let mut buf = Vec::new();
        clap_mangen::Man::new(command_for(bin, about, role))
            .render(&mut buf)
            .map_err(|e| format!("cannot render the man page of {bin}: {e}"))?;
        files.insert(Path::new("doc/man").join(format!("{bin}.1")), buf);
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut cmd = command_for(bin, about, role);
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, bin, &mut buf);
            files.insert(Path::new("doc/completions").join(shell.file_name(bin)), buf);
        }
    }
    let usage_path = Path::new("doc/usage.md");
    let current = std::fs::read_to_string(root.join(usage_path))
        .map_err(|e| format!("cannot read {}: {e}", root.join(usage_path).display()))?;
    let updated = splice(&current, &flag_reference())
        .map_err(|e| format!("{}: {e}", usage_path.display()))?;
    files.insert(usage_path.to_path_buf(), updated.into_bytes());
    Ok(files)
}

/// The clap command as binary `bin` presents itself.
fn command_for(bin: &'static str, about: &'static str, role: &'static str) -> Command {
    Cli::command()
        .name(bin)
        .bin_name(bin)
        .display_name(bin)
        .about(about)
        .long_about(format!(
            "{about}.\n\n{role} See doc/usage.md for the config file, keys, output formats and exit codes."
        ))
}

/// Replace what lies between the markers in `doc` with `generated`.
fn splice(doc: &str, generated: &str) -> Result<String, String> {
    let start = doc
        .find(BEGIN)
        .ok_or_else(|| format!("marker {BEGIN} not found"))?;
    let body = start + BEGIN.len();
    let end = doc[body..]
        .find(END)
        .map(|i| body + i)
        .ok_or_else(|| format!("marker {END} not found after {BEGIN}"))?;
    Ok(format!("{}\n{generated}{}", &doc[..body], &doc[end..]))
}

/// Markdown-safe table cell text.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Split `[default: X]` off a help text.
fn split_default(help: &str) -> (String, Option<String>) {
    let sentence = |t: &str| format!("{}.", t.trim().trim_end_matches('.').trim_end());
    let Some(start) = help.find("[default: ") else {
        return (sentence(help), None);
    };
    let rest = &help[start + "[default: ".len()..];
    let Some(end) = rest.find(']') else {
        return (sentence(help), None);
    };
    let default = rest[..end].trim().to_string();
    let text = format!("{}{}", &help[..start], &rest[end + 1..]);
    (sentence(&text), Some(default))
}

/// The flag reference: one table per help heading, in the order of `--help`.
fn flag_reference() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let heading = arg.get_help_heading().unwrap_or("Help").to_string();
        let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
        let mut flag = String::new();
        if let Some(s) = arg.get_short() {
            let _ = write!(flag, "-{s}, ");
        }
        let _ = write!(flag, "--{long}");
        if takes_value {
            let names: Vec<String> = arg
                .get_value_names()
                .map(|v| v.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
            if !names.is_empty() {
                let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
                if optional {
                    let _ = write!(flag, "[={}]", names.join(" "));
                } else {
                    let _ = write!(flag, " <{}>", names.join(" "));
                }
            }
        }

        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let (mut text, default) = split_default(&help);
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|p| !p.is_hide_set())
            .map(|p| format!("`{}`", p.get_name()))
            .collect();
        if !possible.is_empty() && takes_value {
            let _ = write!(text, " Values: {}.", possible.join(", "));
        }
        if matches!(arg.get_action(), ArgAction::Append) && !text.contains("repeat") {
            text.push_str(" Repeatable.");
        }
        let key = long.replace('-', "_");
        let (key_cell, env_cell) = match long {
            "help" | "version" => ("—".to_string(), "—".to_string()),
            "config" => (
                "— (command line only)".to_string(),
                "`STAMP_CONFIG`".to_string(),
            ),
            "hmac-key" => (
                "— (refused in the file)".to_string(),
                "`STAMP_HMAC_KEY`".to_string(),
            ),
            _ if TABLE_KEYS.contains(&key.as_str()) => (
                format!("`[{key}]` table"),
                "— (no environment form)".to_string(),
            ),
            _ => (
                format!("`{key}`"),
                format!("`STAMP_{}`", key.to_ascii_uppercase()),
            ),
        };
        let default_cell = match (default, arg.get_action()) {
            (Some(d), _) if d.contains(' ') => d,
            (Some(d), _) => format!("`{d}`"),
            (None, ArgAction::SetTrue) => "off".to_string(),
            (None, ArgAction::Help | ArgAction::Version) => "—".to_string(),
            (None, _) => "unset".to_string(),
        };
        let status = if NOT_YET_IMPLEMENTED.contains(&long) {
            " **Accepted, not yet implemented.**"
        } else {
            ""
        };
        let row = format!(
            "| `{}` | {} | {} | {} | {}{} |",
            cell(&flag),
            cell(&key_cell),
            cell(&env_cell),
            cell(&default_cell),
            cell(&text),
            status
        );
        match sections.iter_mut().find(|(h, _)| *h == heading) {
            Some((_, rows)) => rows.push(row),
            None => sections.push((heading, vec![row])),
        }
    }

    let mut out = String::new();
    out.push_str(
        "<!-- Generated by `cargo run -p stamp-docgen` from core/config/src/cli.rs; do not edit by hand. -->\n\n",
    );
    for (heading, rows) in sections {
        let _ = writeln!(out, "### {heading}\n");
        out.push_str("| Flag | Config key | Environment | Default | Description |\n");
        out.push_str("| --- | --- | --- | --- | --- |\n");
        for r in rows {
            out.push_str(&r);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Paths under the generated directories that no generator writes any more.
fn stale(root: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["doc/man", "doc/completions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = Path::new(dir).join(e.file_name());
            if !files.contains_key(&rel) {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn check_files(root: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> ExitCode {
    let mut drift = Vec::new();
    for (rel, want) in files {
        match std::fs::read(root.join(rel)) {
            Ok(have) if &have == want => {}
            Ok(_) => drift.push(format!("{} differs", rel.display())),
            Err(e) => drift.push(format!("{} cannot be read: {e}", rel.display())),
        }
    }
    for rel in stale(root, files) {
        drift.push(format!("{} is not generated any more", rel.display()));
    }
    if drift.is_empty() {
        println!(
            "stamp-docgen: {} generated files are up to date",
            files.len()
        );
        return ExitCode::SUCCESS;
    }
    for d in &drift {
        eprintln!("stamp-docgen: {d}");
    }
    eprintln!("stamp-docgen: run `cargo run -p stamp-docgen` and commit the result");
    ExitCode::FAILURE
}

fn write_files(root: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> ExitCode {
    for (rel, content) in files {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                eprintln!("stamp-docgen: cannot create {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        if std::fs::read(&path).ok().as_deref() == Some(content.as_slice()) {
            continue;
        }
        if let Err(e) = std::fs::write(&path, content) {
            eprintln!("stamp-docgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", rel.display());
    }
    for rel in stale(root, files) {
        match std::fs::remove_file(root.join(&rel)) {
            Ok(()) => println!("removed {}", rel.display()),
            Err(e) => eprintln!("stamp-docgen: cannot remove {}: {e}", rel.display()),
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_between_the_markers() {
        let doc = format!("a\n{BEGIN}\nold\n{END}\nb\n");
        assert_eq!(
            splice(&doc, "new\n").unwrap(),
            format!("a\n{BEGIN}\nnew\n{END}\nb\n")
        );
        assert!(splice("no markers", "x").is_err());
    }

    #[test]
    fn default_is_split_off_the_help() {
        assert_eq!(
            split_default("Packets to send; 0 = until interrupted [default: 1000]."),
            (
                "Packets to send; 0 = until interrupted.".to_string(),
                Some("1000".to_string())
            )
        );
        assert_eq!(
            split_default("One line per packet"),
            ("One line per packet.".to_string(), None)
        );
    }

    #[test]
    fn every_not_yet_implemented_flag_exists() {
        let cmd = Cli::command();
        for long in NOT_YET_IMPLEMENTED {
            assert!(
                cmd.get_arguments().any(|a| a.get_long() == Some(long)),
                "--{long} is not a flag"
            );
        }
    }

    #[test]
    fn reference_has_a_row_per_long_flag() {
        let text = flag_reference();
        let mut cmd = Cli::command();
        cmd.build();
        for a in cmd.get_arguments() {
            if let Some(long) = a.get_long() {
                assert!(text.contains(&format!("--{long}")), "--{long} missing");
            }
        }
    }
}
