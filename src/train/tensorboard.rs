//! TensorBoard event files (`<run>/tb/events.out.tfevents.*`): the scalars of `metrics.jsonl`, the
//! learning rate and the per-epoch sample grid, for a TensorBoard kept open while training.
//!
//! Format: TFRecord framing (u64 length LE, masked CRC-32C of the length, data, masked CRC-32C of
//! the data) around protobuf `Event` messages (tensorflow/core/util/event.proto), of which only the
//! fields written here are declared.
//!
//! Each training session writes its own file, starting with a `SessionLog START` event at its first
//! step: readers (TensorBoard's `purge_orphaned_data`, on by default) then drop what an earlier
//! session logged after the checkpoint this one resumed from, so every step shows once.

use anyhow::{Context, Result};
use prost::Message;
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5, 7")]
    what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    // 7, not 6: field 6 is the deprecated `log_message`.
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    // A oneof, as in the .proto: a scalar of 0.0 is still written (a plain proto3 field would not be).
    #[prost(oneof = "Kind", tags = "2, 4")]
    kind: Option<Kind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Image {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    /// 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SessionLog {
    /// The `SessionStatus` enum; wire-identical to int32.
    #[prost(int32, tag = "1")]
    status: i32,
}

const SESSION_START: i32 = 1;
const FILE_PREFIX: &str = "events.out.tfevents.";

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    // ((crc >> 15) | (crc << 17)) + 0xa282ead8, as TFRecord specifies.
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: the framing TensorFlow's record reader checks.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// An open event file of one training session.
pub struct TbWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl TbWriter {
    /// A new event file in `dir` for a session whose first step will be `first_step` (1 for a new
    /// run, checkpoint step + 1 on resume); earlier events from that step on are orphaned.
    pub fn create(dir: &Path, first_step: u64) -> Result<TbWriter> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(file_name(dir, unix_secs() as u64));
        let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = TbWriter { path, out: BufWriter::new(file) };
        w.event(0, What::FileVersion("brain.Event:2".into()))?;
        w.event(first_step, What::SessionLog(SessionLog { status: SESSION_START }))?;
        w.flush()?;
        Ok(w)
    }

    /// The scalars of a `metrics.jsonl` line: a step line's train terms as `train/<term>`, an
    /// epoch line's test terms as `test/<term>` and its epoch-mean train terms as
    /// `train_epoch/<term>` (`train/` already has the logged steps, one of which may be this one).
    pub fn metrics(&mut self, line: &Value) -> Result<()> {
        let parts: &[(&str, &str)] = match line["kind"].as_str() {
            Some("step") => &[("train", "train")],
            Some("epoch") => &[("test", "test"), ("train", "train_epoch")],
            _ => return Ok(()),
        };
        let Some(step) = line["step"].as_u64() else { return Ok(()) };
        let mut values = Vec::new();
        for (part, prefix) in parts {
            for (k, v) in line[*part].as_object().into_iter().flatten() {
                if let Some(v) = v.as_f64() {
                    values.push(scalar(&format!("{prefix}/{k}"), v));
                }
            }
        }
        self.summary(step, values)
    }

    pub fn scalar(&mut self, tag: &str, step: u64, v: f64) -> Result<()> {
        self.summary(step, vec![scalar(tag, v)])
    }

    /// An image summary of an encoded PNG (TensorBoard shows the bytes as they are).
    pub fn png(&mut self, tag: &str, step: u64, png: &[u8]) -> Result<()> {
        let (width, height, colorspace) = png_header(png).context("not a PNG")?;
        let image = Image { height, width, colorspace, encoded_image_string: png.to_vec() };
        self.summary(step, vec![SummaryValue { tag: tag.into(), kind: Some(Kind::Image(image)) }])
    }

    /// Hand what is buffered to the OS, for a live TensorBoard and so that a checkpoint never
    /// claims steps the event file lacks.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn summary(&mut self, step: u64, value: Vec<SummaryValue>) -> Result<()> {
        self.event(step, What::Summary(Summary { value }))
    }

    fn event(&mut self, step: u64, what: What) -> Result<()> {
        let e = Event { wall_time: unix_secs(), step: step as i64, what: Some(what) };
        self.out.write_all(&record(&e.encode_to_vec())).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

fn scalar(tag: &str, v: f64) -> SummaryValue {
    SummaryValue { tag: tag.into(), kind: Some(Kind::SimpleValue(v as f32)) }
}

fn unix_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// `events.out.tfevents.<secs>.<host>.<pid>.0`. Readers load a folder's files in name order, so
/// `<secs>` is raised past every existing file's: a resumed session's START event must come after
/// the events it orphans even when both sessions began within the same second.
fn file_name(dir: &Path, now: u64) -> String {
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_prefix(FILE_PREFIX)?.split('.').next()?.parse::<u64>().ok()
        })
        .max();
    let secs = newest.map_or(now, |n| now.max(n + 1));
    format!("{FILE_PREFIX}{secs:010}.{}.{}.0", hostname(), std::process::id())
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name: String = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end])
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c))
            .collect()
    } else {
        String::new()
    };
    if name.is_empty() { "latentlab".into() } else { name }
}

/// Width, height and TensorBoard colorspace from a PNG's IHDR chunk (fixed offsets by the spec).
fn png_header(png: &[u8]) -> Option<(i32, i32, i32)> {
    if png.len() < 26 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| i32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
    let colorspace = match png[25] {
        0 => 1, // grey
        4 => 2, // grey + alpha
        6 => 4, // RGBA
        _ => 3, // RGB (palette images decode to RGB)
    };
    Some((be(16), be(20), colorspace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_record_framing_match_the_spec() {
        // The CRC-32C check value (RFC 3720 B.4).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // Masked by hand: (0xE3069283 >> 15 | 0xE3069283 << 17) + 0xa282ead8 (mod 2^32).
        assert_eq!(masked_crc(b"123456789"), 0x2507_c60du32.wrapping_add(0xa282_ead8));
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[8..12], &masked_crc(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(&r[15..], &masked_crc(b"abc").to_le_bytes());
        // The same bytes from an independent bitwise CRC-32C (polynomial 0x82F63B78) and mask.
        assert_eq!(&r[8..12], &[0xb0, 0x99, 0x49, 0x0e]);
        assert_eq!(&r[15..], &[0x6e, 0x57, 0xf1, 0x21]);
    }

    #[test]
    fn a_zero_scalar_is_still_encoded() {
        let bytes = Summary { value: vec![scalar("a", 0.0)] }.encode_to_vec();
        // value { tag "a" (0a 01 61), simple_value 0.0 (15 00000000) }
        assert_eq!(bytes, [0x0a, 0x08, 0x0a, 0x01, b'a', 0x15, 0, 0, 0, 0]);
    }

    #[test]
    fn later_sessions_sort_after_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let a = TbWriter::create(dir.path(), 1).unwrap().path;
        let b = TbWriter::create(dir.path(), 5).unwrap().path;
        assert!(a < b, "{} !< {}", a.display(), b.display());
        assert!(b.file_name().unwrap().to_string_lossy().contains("tfevents"));
        // A file from the future (a clock set back) still sorts first.
        let c = file_name(dir.path(), 1);
        assert!(dir.path().join(c) > b);
    }
}
