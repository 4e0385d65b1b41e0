//! The README as a newcomer runs it: every `latentlab` command line in it parses, and the Commands
//! block runs top to bottom as written — on the small digits set and with few steps, where the
//! real command would take minutes.

mod common;
use clap::Parser;
use common::*;

/// (heading, command words) of every `latentlab …` line in the README's bash blocks.
fn readme_commands() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (mut heading, mut in_bash, mut out) = (String::new(), false, Vec::new());
    for line in text.lines() {
        if line.starts_with('#') && !in_bash {
            heading = line.trim_start_matches('#').trim().to_string();
        } else if line.starts_with("```") {
            in_bash = !in_bash && line.trim() == "```bash";
        } else if in_bash && line.starts_with("latentlab ") {
            let cmd = line.split(" #").next().unwrap();
            out.push((heading.clone(), words(cmd)));
        }
    }
    out
}

/// Words of a shell line: whitespace splits, "double quotes" group (captions).
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn every_readme_command_parses() {
    let cmds = readme_commands();
    assert!(cmds.len() > 30, "only {} commands found: is the README's format changed?", cmds.len());
    for (heading, words) in &cmds {
        if let Err(e) = latentlab::cli::Cli::try_parse_from(words) {
            panic!("README ({heading}): `{}` does not parse:\n{e}", words.join(" "));
        }
        assert!(!words.iter().any(|w| w.contains("<run>")), "README ({heading}): placeholder in `{}`", words.join(" "));
    }
}

/// The command with tiny settings: training on digits for a few steps, a light evaluation.
fn tiny(words: &[String]) -> Vec<String> {
    let mut w: Vec<String> = words[1..].to_vec();
    let set = |w: &mut Vec<String>, flag: &str, value: &str| match w.iter().position(|x| x == flag) {
        Some(i) => w[i + 1] = value.into(),
        None => w.extend([flag.to_string(), value.to_string()]),
    };
    match w[0].as_str() {
        "train" => {
            set(&mut w, "--dataset", "digits");
            set(&mut w, "--epochs", "2");
            set(&mut w, "--max-steps", "20");
        }
        "eval" => {
            for (f, v) in [("--n", "300"), ("--iwae-k", "20"), ("--nn-n", "300")] {
                set(&mut w, f, v);
            }
        }
        _ => {}
    }
    w
}

#[test]
fn the_commands_block_runs_top_to_bottom() {
    let dir = tempfile::tempdir().unwrap();
    let block: Vec<Vec<String>> =
        readme_commands().into_iter().filter(|(h, _)| h == "Commands").map(|(_, w)| w).collect();
    assert!(block.len() >= 10, "{block:?}");
    for words in &block {
        // Downloads are tested against a local server (tests/fetch.rs); CI reaches no dataset host.
        if words[1..3] == ["data", "fetch"] {
            continue;
        }
        let args = tiny(words);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = cli(&args, dir.path());
        assert!(
            ok,
            "README command `{}` (run as `latentlab {}`) failed:\n{out}\n{err}",
            words.join(" "),
            args.join(" ")
        );
    }
    for f in [
        "grid.png",
        "s.npy",
        "sevens.png",
        "thick-sevens.png",
        "runs/stackgan/final/walk.png",
        "runs/vae/final/latent-scatter.png",
        "runs/dcgan/final/walk.png",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
}
