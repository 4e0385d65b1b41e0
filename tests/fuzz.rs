//! Hostile inputs: every reader of outside files (IDX, gzip, digits CSV, .npy/.npz, run configs,
//! checkpoints, feature networks, images of a dataset folder) ends in a named error — never a panic, never an allocation the
//! file's own size does not justify. A hand-made corpus (tests/corpus/) plus property-based
//! mutation of valid files (proptest; failures are kept in proptest-regressions/).

use latentlab::config::{Options, RunConfig};
use latentlab::data::{digits, idx};
use latentlab::run::checkpoint::Checkpoint;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Open `path` with the reader its name says; the error text, or None if it (wrongly) loaded.
fn read_with_its_reader(path: &Path) -> Option<String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let err = |r: anyhow::Result<()>| r.err().map(|e| format!("{e:#}"));
    match name.split('-').next().unwrap() {
        "idx" => err(idx::read(path, 3).map(|_| ())),
        "ckpt" => err(Checkpoint::load(path).map(|_| ())),
        "config" => {
            let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).to_string();
            let a = err(RunConfig::from_toml(&text, path).map(|_| ()));
            let b = err(Options::from_file(path)
                .and_then(|o| RunConfig::resolve(latentlab::models::ModelKind::Vae, o))
                .map(|_| ()));
            // As a --config options file some are valid option sets; as a run config none is.
            assert!(a.is_some() || b.is_some());
            a
        }
        "npy" | "npz" => err(latentlab::viz::grid::read_npy(path).map(|_| ())),
        "digits" => err(digits::read(path).map(|_| ())),
        "feat" => err(latentlab::eval::features::load(path, &burn::prelude::Device::flex()).map(|_| ())),
        "img" => err(latentlab::data::folder::decode(path, 32, 3).map(|_| ())),
        other => panic!("corpus file {name}: unknown kind '{other}'"),
    }
}

#[test]
fn every_corpus_file_is_a_named_error() {
    let files = corpus();
    assert!(files.len() >= 47, "corpus has only {} files", files.len());
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let r = std::panic::catch_unwind(|| read_with_its_reader(f));
        let msg = r.unwrap_or_else(|_| panic!("{name}: the reader panicked"));
        let msg = msg.unwrap_or_else(|| panic!("{name}: hostile file was accepted"));
        assert!(msg.contains(&name), "{name}: error does not name the file: {msg}");
        assert!(msg.len() > name.len() + 10, "{name}: error says nothing about the problem: {msg}");
    }
}

fn valid_idx() -> Vec<u8> {
    idx::encode(&[3, 4, 5], &(0..60).map(|i| i as u8).collect::<Vec<_>>())
}

fn valid_checkpoint() -> Vec<u8> {
    use latentlab::run::checkpoint::{Meta, TrainState};
    let cfg = RunConfig::resolve(latentlab::models::ModelKind::Vae, Options::default()).unwrap();
    let spec = latentlab::models::ModelSpec {
        kind: cfg.model,
        shape: latentlab::data::ImageShape { channels: 1, height: 2, width: 2 },
        num_classes: 0,
        latent_dim: 2,
        hidden: vec![3],
        decoder: cfg.decoder,
        decoder_sigma: None,
        beta: 1.0,
        prior: Default::default(),
        arch: Default::default(),
        objective: Default::default(),
        d_conv3: false,
        ema: None,
        width: None,
        text: None,
        condition: None,
    };
    Checkpoint {
        meta: Meta {
            state: TrainState::default(),
            config: cfg.to_toml(),
            spec,
            class_names: vec![],
            latentlab_version: "test".into(),
        },
        model: vec![1, 2, 3, 4],
        optim: vec![5, 6],
    }
    .encode()
}

fn valid_config() -> String {
    RunConfig::resolve(latentlab::models::ModelKind::Dcgan, Options::default()).unwrap().to_toml()
}

/// A one-array .npz (stored, as np.savez writes it) holding `npy` as `x`.
fn npz_of(npy: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file("x.npy", opts).unwrap();
    w.write_all(npy).unwrap();
    w.finish().unwrap().into_inner()
}

/// Byte-level mutations: flip, cut, splice in random bytes.
fn mutate(mut v: Vec<u8>, ops: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, pos, byte) in ops {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let p = pos % v.len();
        match op % 4 {
            0 => v[p] ^= byte | 1,
            1 => v.truncate(p),
            2 => v.insert(p, byte),
            _ => v[p] = byte,
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn idx_parser_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200), rank in 1usize..4) {
        let _ = idx::parse(&bytes, rank);
        let _ = idx::maybe_gunzip([vec![0x1f, 0x8b], bytes].concat());
    }

    #[test]
    fn idx_header_claims_are_checked_before_allocating(dims in proptest::collection::vec(any::<u32>(), 3), tail in 0usize..64) {
        let mut b = vec![0, 0, 8, 3];
        for d in &dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(0u8, tail));
        let need: u128 = dims.iter().map(|&d| d as u128).product();
        match idx::parse(&b, 3) {
            Ok(a) => prop_assert_eq!(a.data.len() as u128, need),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn mutated_idx_files_parse_or_fail_cleanly(ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let b = mutate(valid_idx(), &ops);
        if let Ok(a) = idx::parse(&b, 3) {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }

    #[test]
    fn mutated_checkpoints_are_rejected(ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let orig = valid_checkpoint();
        let b = mutate(orig.clone(), &ops);
        let r = Checkpoint::decode(&b);
        // Any change to the bytes breaks the checksum: only the unchanged file decodes.
        prop_assert_eq!(r.is_ok(), b == orig);
    }

    #[test]
    fn arbitrary_checkpoint_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let framed = [b"LLCKPT01".to_vec(), bytes].concat();
        let _ = Checkpoint::decode(&framed);
    }

    #[test]
    fn mutated_configs_load_or_name_the_problem(ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let b = mutate(valid_config().into_bytes(), &ops);
        let text = String::from_utf8_lossy(&b);
        if let Err(e) = RunConfig::from_toml(&text, Path::new("run/config.toml")) {
            let msg = format!("{:#}", e);
            prop_assert!(msg.contains("config.toml"), "{}", msg);
        }
    }

    #[test]
    fn mutated_png_images_decode_or_fail_cleanly(ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        let img = image::RgbImage::from_fn(12, 10, |x, y| image::Rgb([x as u8 * 20, y as u8 * 20, 7]));
        img.save(&p).unwrap();
        let b = mutate(std::fs::read(&p).unwrap(), &ops);
        std::fs::write(&p, b).unwrap();
        if let Ok(v) = latentlab::data::folder::decode(&p, 8, 3) {
            prop_assert_eq!(v.len(), 3 * 8 * 8);
        }
    }

    #[test]
    fn mutated_npy_and_npz_files_load_or_fail_cleanly(ops in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6), zip in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let shape = latentlab::data::ImageShape { channels: 1, height: 2, width: 3 };
        let npy = latentlab::viz::grid::npy_bytes(&[0.5; 12], shape);
        let valid = if zip { npz_of(&npy) } else { npy };
        let p = dir.path().join("x.npz");
        std::fs::write(&p, mutate(valid, &ops)).unwrap();
        match latentlab::viz::grid::read_npy(&p) {
            Ok((dims, v)) => prop_assert_eq!(v.len(), dims.iter().product::<usize>()),
            Err(e) => {
                let msg = format!("{:#}", e);
                prop_assert!(msg.contains("x.npz"), "{}", msg);
            }
        }
    }

    #[test]
    fn arbitrary_npy_and_digits_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("x.npy");
        std::fs::write(&npy, [b"\x93NUMPY\x01\x00".to_vec(), bytes.clone()].concat()).unwrap();
        let _ = latentlab::viz::grid::read_npy(&npy);
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, &bytes).unwrap();
        let _ = digits::read(&csv);
    }
}
