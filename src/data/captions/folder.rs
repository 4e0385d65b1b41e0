//! Captions the user wrote for an image folder (formats in the module doc of `data::captions`).

use super::text::tokenize;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Largest captions file read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Longest caption, in characters.
pub const MAX_CAPTION_CHARS: usize = 1000;

/// Captions of every image of `files` (the folder's `list_images(root)`, in that order), or None
/// when the folder has no caption source at all.
pub fn load_folder(root: &Path, files: &[PathBuf]) -> Result<Option<Vec<Vec<String>>>> {
    let txt = root.join("captions.txt");
    let jsonl = root.join("captions.jsonl");
    let mut caps: Vec<Vec<String>> = vec![Vec::new(); files.len()];
    let source = match (txt.exists(), jsonl.exists()) {
        (true, true) => bail!(
            "{} and {} both exist: keep one caption file (a folder's captions come from exactly one source)",
            txt.display(),
            jsonl.display()
        ),
        (true, false) | (false, true) => {
            let (file, json) = if txt.exists() { (txt, false) } else { (jsonl, true) };
            let index: HashMap<String, usize> = files.iter().enumerate().map(|(i, f)| (rel_key(root, f), i)).collect();
            let text = read_text(&file)?;
            for (ln, line) in text.lines().enumerate() {
                let at = || format!("{}:{}", file.display(), ln + 1);
                let trimmed = line.trim();
                if trimmed.is_empty() || (!json && trimmed.starts_with('#')) {
                    continue;
                }
                let (name, captions) = if json {
                    parse_json(trimmed).map_err(|e| anyhow!("{}: {e}", at()))?
                } else {
                    let Some((name, cap)) = line.split_once('\t') else {
                        bail!(
                            "{}: no TAB between the image path and the caption (write `path/to/image.png<TAB>caption`)",
                            at()
                        );
                    };
                    (name.trim().to_string(), vec![cap.to_string()])
                };
                let key = normalise(&name).map_err(|e| anyhow!("{}: {e}", at()))?;
                let Some(&i) = index.get(&key) else {
                    bail!("{}: no image {} in the folder {}", at(), quote(&name), root.display());
                };
                for c in captions {
                    caps[i].push(check_caption(&c).map_err(|e| anyhow!("{}: {e}", at()))?);
                }
            }
            file.display().to_string()
        }
        (false, false) => {
            let sidecars: Vec<PathBuf> = files.iter().map(|f| f.with_extension("txt")).collect();
            if !sidecars.iter().any(|s| s.is_file()) {
                return Ok(None);
            }
            for (i, s) in sidecars.iter().enumerate() {
                if !s.is_file() {
                    continue;
                }
                let text = read_text(s)?;
                for (ln, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    caps[i].push(check_caption(line).map_err(|e| anyhow!("{}:{}: {e}", s.display(), ln + 1))?);
                }
            }
            format!("the per-image .txt files in {}", root.display())
        }
    };
    let missing: Vec<usize> = (0..files.len()).filter(|&i| caps[i].is_empty()).collect();
    if let Some(&first) = missing.first() {
        bail!(
            "{source}: no caption for image {} ({} of {} images have none; every image needs at least one)",
            quote(&rel_key(root, &files[first])),
            missing.len(),
            files.len()
        );
    }
    for c in &mut caps {
        let mut seen = std::collections::HashSet::new();
        c.retain(|x| seen.insert(x.clone()));
    }
    Ok(Some(caps))
}

/// An image's path relative to `root`, '/'-separated: how caption files name it.
fn rel_key(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The lookup key of a path written in a caption file; absolute paths and `..` are refused.
fn normalise(name: &str) -> Result<String> {
    if name.is_empty() {
        bail!("empty image path");
    }
    let unified = name.replace('\\', "/");
    let b = unified.as_bytes();
    let drive = b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/';
    if unified.starts_with('/') || drive || Path::new(name).is_absolute() {
        bail!("image path {} is absolute; write it relative to the folder", quote(name));
    }
    let parts: Vec<&str> = unified.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        bail!("image path {} contains '..'; write it relative to the folder, inside it", quote(name));
    }
    Ok(parts.join("/"))
}

/// A caption as stored: trimmed, non-empty, at most 1,000 characters, with at least one word.
fn check_caption(c: &str) -> Result<String> {
    let c = c.trim();
    if c.is_empty() {
        bail!("empty caption");
    }
    let n = c.chars().count();
    if n > MAX_CAPTION_CHARS {
        bail!("caption of {n} characters; at most {MAX_CAPTION_CHARS} are allowed");
    }
    if tokenize(c).is_empty() {
        bail!("caption {} has no words", quote(c));
    }
    Ok(c.to_string())
}

/// One captions.jsonl line: `{"file": …, "caption": "…"}` and/or `"captions": ["…", …]`.
fn parse_json(line: &str) -> Result<(String, Vec<String>)> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| anyhow!("invalid JSON: {e}"))?;
    let Some(obj) = v.as_object() else {
        bail!("expected a JSON object like {{\"file\": \"a.png\", \"caption\": \"…\"}}");
    };
    let file = match obj.get("file") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => bail!("\"file\" must be a string (the image path relative to the folder)"),
        None => bail!("missing \"file\" (the image path relative to the folder)"),
    };
    let mut caps = Vec::new();
    match obj.get("caption") {
        Some(serde_json::Value::String(s)) => caps.push(s.clone()),
        Some(_) => bail!("\"caption\" must be a string"),
        None => {}
    }
    match obj.get("captions") {
        Some(serde_json::Value::Array(a)) if !a.is_empty() => {
            for c in a {
                let Some(s) = c.as_str() else { bail!("\"captions\" must be an array of strings") };
                caps.push(s.to_string());
            }
        }
        Some(serde_json::Value::Array(_)) => bail!("\"captions\" is empty"),
        Some(_) => bail!("\"captions\" must be an array of strings"),
        None => {}
    }
    if caps.is_empty() {
        bail!("missing \"caption\" (a string) or \"captions\" (an array of strings)");
    }
    Ok((file, caps))
}

/// A captions file as text: at most 64 MiB (checked before reading), valid UTF-8 (a leading BOM is
/// dropped).
fn read_text(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if len > MAX_FILE_BYTES {
        bail!(
            "{}: {} is larger than the {} allowed for a captions file",
            path.display(),
            crate::util::human_bytes(len),
            crate::util::human_bytes(MAX_FILE_BYTES)
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            bail!("{}:{line}: not valid UTF-8 (save the file as UTF-8)", path.display())
        }
    }
}

/// A user-written string for a message: escaped, and cut at 200 characters.
fn quote(s: &str) -> String {
    let cut: String = s.chars().take(200).collect();
    let more = if cut.len() < s.len() { "…" } else { "" };
    format!("'{}{more}'", cut.escape_debug())
}
