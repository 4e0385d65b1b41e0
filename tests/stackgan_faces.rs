//! StackGAN on faces: captions made from CelebA's human annotations read back to exactly what
//! the annotations say; a short two-stage run on a few hundred real faces draws what its captions
//! state better than chance; typed sentences, unknown and negated words, walks, resume, the
//! report's text section.

mod common;
use common::{cli_env, shared_data, small_celeba};
use latentlab::data::captions::faces::{captions, statements};
use std::path::Path;

/// Every attribute the grammar can say, by CelebA name (facial hair is said of men only).
const SAID: &[&str] = &[
    "Male",
    "Young",
    "Smiling",
    "Chubby",
    "Bald",
    "Blond_Hair",
    "Black_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Wavy_Hair",
    "Straight_Hair",
    "Bangs",
    "Receding_Hairline",
    "Eyeglasses",
    "Wearing_Hat",
    "Mustache",
    "Goatee",
    "5_o_Clock_Shadow",
    "Sideburns",
    "Heavy_Makeup",
    "Wearing_Lipstick",
    "Wearing_Earrings",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "High_Cheekbones",
    "Rosy_Cheeks",
    "Arched_Eyebrows",
    "Bushy_Eyebrows",
    "Big_Nose",
    "Big_Lips",
    "Double_Chin",
    "Bags_Under_Eyes",
    "Mouth_Slightly_Open",
    "Pale_Skin",
];
const FACIAL_HAIR: &[&str] = &["Mustache", "Goatee", "5_o_Clock_Shadow", "Sideburns"];

#[test]
fn every_annotated_face_gets_sentences_that_read_back_to_its_annotations() {
    let text = std::fs::read_to_string(shared_data().join("celeba/list_attr_celeba.txt")).unwrap();
    let mut lines = text.lines();
    lines.next();
    let names: Vec<String> = lines.next().unwrap().split_whitespace().map(String::from).collect();
    let col = |n: &str| names.iter().position(|x| x == n).unwrap();
    let (mut faces, mut negations) = (0, 0);
    for l in lines.take(20_000) {
        let row: Vec<u8> = l.split_whitespace().skip(1).map(|v| u8::from(v == "1")).collect();
        assert_eq!(row.len(), 40, "{l}");
        let has = |n: &str| row[col(n)] == 1;
        let caps = captions(&names, &row);
        assert!(caps.len() >= 2, "{caps:?}");
        for c in &caps {
            let st = statements(c);
            assert!(st.iter().any(|s| s.0 == "Male"), "{c:?} does not say man or woman");
            for (a, v) in &st {
                // What a sentence states is what the annotation says, present or absent.
                assert_eq!(has(a), *v, "{c:?} states {a} = {v}; the annotation says {}", has(a));
            }
            negations += st.iter().filter(|s| !s.1 && s.0 != "Male" && s.0 != "Young").count();
        }
        // The fullest sentence states every present attribute the grammar says (facial hair of men).
        let first: Vec<&str> = statements(&caps[0]).into_iter().filter(|s| s.1).map(|s| s.0).collect();
        // One hair colour and one style are said: the first annotated, in the grammar's order.
        let colours = ["Blond_Hair", "Black_Hair", "Brown_Hair", "Gray_Hair"];
        let styles = ["Wavy_Hair", "Straight_Hair"];
        let first_of = |g: &[&'static str]| g.iter().copied().find(|a| has(a));
        let unsaid: Vec<&str> = [&colours[..], &styles[..]]
            .iter()
            .flat_map(|g| g.iter().copied().filter(move |a| Some(*a) != first_of(g)))
            .collect();
        for a in SAID.iter().filter(|a| has(a) && (has("Male") || !FACIAL_HAIR.contains(a)) && !unsaid.contains(a)) {
            assert!(first.contains(a), "{:?} leaves out {a}", caps[0]);
        }
        if has("Male") && !has("No_Beard") {
            assert!(first.contains(&"No_Beard") || statements(&caps[0]).contains(&("No_Beard", false)), "{caps:?}");
        }
        // The second states eyeglasses, a hat and smiling either way.
        let second: Vec<&str> = statements(&caps[1]).into_iter().map(|s| s.0).collect();
        for a in ["Eyeglasses", "Wearing_Hat", "Smiling"] {
            assert!(second.contains(&a), "{:?} does not say {a}", caps[1]);
        }
        faces += 1;
    }
    assert_eq!(faces, 20_000);
    assert!(negations > 20_000, "absent attributes are said: {negations}");
}

fn env(dir: &Path) -> [(&'static str, std::path::PathBuf); 1] {
    [("LATENTLAB_CACHE", dir.join("cache"))]
}

fn cli(args: &[&str], dir: &Path) -> (bool, String) {
    let e = env(dir);
    let e: Vec<(&str, &Path)> = e.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let (ok, out, err) = cli_env(args, dir, &e);
    (ok, out + &err)
}

fn run(args: &[&str], dir: &Path) -> String {
    let (ok, out) = cli(args, dir);
    assert!(ok, "latentlab {args:?} failed:\n{out}");
    out
}

fn fails(args: &[&str], dir: &Path, wants: &[&str]) {
    let (ok, out) = cli(args, dir);
    assert!(!ok, "latentlab {args:?} should fail");
    for w in wants {
        assert!(out.contains(w), "latentlab {args:?}: the error should say '{w}':\n{out}");
    }
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn a_short_face_stackgan_draws_what_its_captions_state_better_than_chance() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 600);
    let out = dir.path().join("text");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let train = ["train", "stackgan", "--dataset", d, "--out", o, "--image-size", "32", "--width", "8"];
    let mut args = train.to_vec();
    // 100 epochs of 528 faces: 450 steps per stage, ~40 s on 2 cores.
    args.extend(["--epochs", "100", "--log-every", "100"]);
    run(&args, dir.path());
    let rows = std::fs::read_to_string(out.join("final/captions.txt")).unwrap();
    assert!(rows.lines().count() >= 4 && rows.contains("woman"), "{rows}");

    // Typed sentences, one row each; words it never saw are named, negated ones as such.
    let png = dir.path().join("typed.png");
    let p = png.to_str().unwrap();
    run(
        &[
            "sample",
            o,
            "--text",
            "a smiling young woman",
            "--text",
            "an older man, not smiling",
            "--n",
            "4",
            "--out",
            p,
        ],
        dir.path(),
    );
    assert!(png.is_file());
    fails(&["sample", o, "--text", "a woman with purple hair"], dir.path(), &["'purple'", "never seen"]);
    fails(&["sample", o, "--text", "a man without elbows"], dir.path(), &["'elbows' after a negation"]);
    fails(&["sample", o, "--class", "1"], dir.path(), &["--class", "a caption (--text)"]);
    run(&["walk", o, "--text", "a young woman", "--to", "an older man", "--rows", "2", "--steps", "3"], dir.path());

    run(&["eval", o, "--n", "2000", "--metrics", "fid,text"], dir.path());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
    let t = &r["text"];
    assert_eq!(t["annotated"], true, "{t}");
    assert_eq!(t["n"], 2000);
    // Balanced agreement (the mean of the shares right among captions saying present and absent),
    // where the classifier trained on these 528 faces reads sex at 0.83 on real ones. Measured when
    // this test was written: stage II Male 0.90, mean 0.60; chance 0.51, 0.50.
    let bal = |v: &serde_json::Value, a: &str| v["balanced"][a].as_f64().unwrap();
    let mean = |v: &serde_json::Value| v["balanced_mean"].as_f64().unwrap();
    let (two, chance, real) = (&t["stages"][1]["agreement"], &t["chance"], &t["real"]);
    assert!(bal(real, "Male") > 0.7, "the classifier reads the real faces' sex: {real}");
    assert!(bal(chance, "Male") < 0.6, "a permuted caption states the right sex about half the time: {chance}");
    assert!(bal(two, "Male") > bal(chance, "Male") + 0.2, "stage II draws the sex its caption states: {t}");
    assert!(mean(two) > mean(chance) + 0.04, "stage II follows its captions: {t}");
    assert!(t["stages"][1]["agreement"]["stated"]["Eyeglasses"][1].as_u64().unwrap() > 0, "absent stated: {t}");
    assert!(t["captions"].as_str().unwrap().contains("human-annotated"), "{t}");
    assert!(r["protocol"]["text"].as_str().unwrap().contains("permuted caption"));

    // Resume continues the run; the report's text section lists the faces' attributes.
    run(&["resume", o, "--epochs", "101"], dir.path());
    let html = dir.path().join("report.html");
    run(&["compare", o, "--out", html.to_str().unwrap()], dir.path());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("Text to image") && page.contains("Eyeglasses") && page.contains("balanced"),
        "report text section"
    );
}

/// Options the data cannot serve are refused before a run folder exists (which would block the
/// corrected command).
#[test]
fn face_text_options_the_data_cannot_use_are_refused_before_any_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 60);
    let out = dir.path().join("run");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let small = ["train", "stackgan", "--dataset", d, "--out", o, "--image-size", "16", "--max-steps", "1"];
    fails(&small, dir.path(), &["at least 16", "16×16", "--image-size 32"]);
    assert!(!out.exists(), "a refused run left {o}");
    let digits =
        ["train", "stackgan", "--dataset", "digits", "--out", o, "--negation-scope", "false", "--max-steps", "1"];
    fails(&digits, dir.path(), &["--negation-scope", "'digits' has none"]);
    assert!(!out.exists(), "a refused run left {o}");
}
