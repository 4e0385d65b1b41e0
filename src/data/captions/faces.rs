//! Captions of faces, made from their human-annotated attributes (CelebA's 40), and what a face
//! caption states, read back.
//!
//! # The grammar
//!
//! A face's row of attributes becomes several sentences (one is drawn per image per step):
//!
//! 1. everything the annotation says is present: *"a smiling young woman with blond wavy hair,
//!    bangs, heavy makeup, lipstick and earrings"*;
//! 2. the salient things, then what is absent where that is worth saying: *"an older man with gray
//!    hair and eyeglasses, without a hat, clean-shaven, not smiling"*;
//! 3. the subject alone: *"a smiling young woman"*;
//! 4. the subject's sex and age with the first two things present: *"a young man with black hair
//!    and a mustache"*.
//!
//! Hair is one colour and one style, the first annotated of blond, black, brown, gray and of wavy,
//! straight (a few faces are annotated with two colours). The subject is *man*/*woman* (Male) after *young*/*older* (Young), *smiling* (Smiling),
//! *chubby* (Chubby) and *bald* (Bald). Facial hair (beard, mustache, goatee, stubble, sideburns,
//! clean-shaven) is said of men only. Negations said: eyeglasses, a hat, a beard (*clean-shaven*),
//! smiling. Attractive, Blurry, Oval_Face, Pointy_Nose and Narrow_Eyes are never said: they are
//! judgements of the annotator or of the photograph, not descriptions of the person.
//!
//! # Reading a caption back
//!
//! [`statements`] reads what a caption states with the same lexicon ([`LEXICON`]) and **negation
//! scope** (Pang, Lee & Vaithyanathan 2002; Das & Chen 2001): *without*, *no*, *not* and *never*
//! negate every word up to the next punctuation mark or *with*, *wearing*, *but*, *has*, *who*. The same scoped
//! words are what a text encoder sees ([`scoped_tokens`]): inside a scope a word becomes
//! `not:word`, so "with eyeglasses, without a hat" and "with a hat, without eyeglasses" — the same
//! bag of words — are different inputs. An attribute stated both ways ("a man … woman") is stated
//! neither way.

use super::text::tokenize;

/// One entry of the lexicon: words (a phrase, matched on consecutive tokens), the attribute they
/// state and its value outside a negation scope.
pub struct Entry {
    pub words: &'static [&'static str],
    pub attr: &'static str,
    pub value: bool,
}

const fn e(words: &'static [&'static str], attr: &'static str, value: bool) -> Entry {
    Entry { words, attr, value }
}

/// What the words of a face caption state; two-word phrases before single words.
pub const LEXICON: &[Entry] = &[
    e(&["receding", "hairline"], "Receding_Hairline", true),
    e(&["heavy", "makeup"], "Heavy_Makeup", true),
    e(&["pale", "skin"], "Pale_Skin", true),
    e(&["high", "cheekbones"], "High_Cheekbones", true),
    e(&["rosy", "cheeks"], "Rosy_Cheeks", true),
    e(&["arched", "eyebrows"], "Arched_Eyebrows", true),
    e(&["bushy", "eyebrows"], "Bushy_Eyebrows", true),
    e(&["big", "nose"], "Big_Nose", true),
    e(&["big", "lips"], "Big_Lips", true),
    e(&["double", "chin"], "Double_Chin", true),
    e(&["open", "mouth"], "Mouth_Slightly_Open", true),
    e(&["bags"], "Bags_Under_Eyes", true),
    e(&["man"], "Male", true),
    e(&["woman"], "Male", false),
    e(&["young"], "Young", true),
    e(&["older"], "Young", false),
    e(&["old"], "Young", false),
    e(&["smiling"], "Smiling", true),
    e(&["chubby"], "Chubby", true),
    e(&["bald"], "Bald", true),
    e(&["blond"], "Blond_Hair", true),
    e(&["black"], "Black_Hair", true),
    e(&["brown"], "Brown_Hair", true),
    e(&["gray"], "Gray_Hair", true),
    e(&["grey"], "Gray_Hair", true),
    e(&["wavy"], "Wavy_Hair", true),
    e(&["straight"], "Straight_Hair", true),
    e(&["bangs"], "Bangs", true),
    e(&["eyeglasses"], "Eyeglasses", true),
    e(&["glasses"], "Eyeglasses", true),
    e(&["mustache"], "Mustache", true),
    e(&["moustache"], "Mustache", true),
    e(&["goatee"], "Goatee", true),
    e(&["beard"], "No_Beard", false),
    e(&["clean-shaven"], "No_Beard", true),
    e(&["stubble"], "5_o_Clock_Shadow", true),
    e(&["sideburns"], "Sideburns", true),
    e(&["hat"], "Wearing_Hat", true),
    e(&["makeup"], "Heavy_Makeup", true),
    e(&["lipstick"], "Wearing_Lipstick", true),
    e(&["earrings"], "Wearing_Earrings", true),
    e(&["necklace"], "Wearing_Necklace", true),
    e(&["necktie"], "Wearing_Necktie", true),
    e(&["tie"], "Wearing_Necktie", true),
];

/// The prefix of a word inside a negation scope.
pub const NOT: &str = "not:";

const NEGATORS: [&str; 4] = ["without", "no", "not", "never"];

/// Words a person types for the grammar's own (which are what a run's vocabulary holds).
const SYNONYMS: [(&str, &str); 8] = [
    ("old", "older"),
    ("elderly", "older"),
    ("grey", "gray"),
    ("blonde", "blond"),
    ("glasses", "eyeglasses"),
    ("spectacles", "eyeglasses"),
    ("moustache", "mustache"),
    ("tie", "necktie"),
];

/// The grammar's word for `w` ("old" → "older"), or `w`.
fn canonical(w: String) -> String {
    SYNONYMS.iter().find(|(s, _)| *s == w).map_or(w, |(_, c)| c.to_string())
}
const SCOPE_ENDS: [&str; 5] = ["with", "wearing", "but", "has", "who"];

/// The caption's words (synonyms as the grammar's: [`SYNONYMS`]) with negation scope marked: words after a negator, up to punctuation or
/// *with*/*wearing*/*but*, carry the `not:` prefix (the negators themselves stay plain).
/// "a man with eyeglasses, without a hat" → a man with eyeglasses without not:a not:hat.
pub fn scoped_tokens(caption: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Clauses: split at punctuation, which ends a scope (inner '-', '/', '\'' belong to words).
    for clause in caption.split([',', '.', ';', ':', '!', '?', '(', ')']) {
        let mut negated = false;
        for w in tokenize(clause).into_iter().map(canonical) {
            if SCOPE_ENDS.contains(&w.as_str()) {
                negated = false;
                out.push(w);
            } else if NEGATORS.contains(&w.as_str()) {
                negated = true;
                out.push(w);
            } else if negated {
                out.push(format!("{NOT}{w}"));
            } else {
                out.push(w);
            }
        }
    }
    out
}

/// What a caption states: (attribute name, value) for each attribute its words name one way only,
/// in lexicon order of first mention.
pub fn statements(caption: &str) -> Vec<(&'static str, bool)> {
    let toks = scoped_tokens(caption);
    let split: Vec<(bool, &str)> =
        toks.iter().map(|t| t.strip_prefix(NOT).map_or((false, t.as_str()), |w| (true, w))).collect();
    let mut said: Vec<(&'static str, bool, bool)> = Vec::new(); // (attr, value, contradicted)
    let mut i = 0;
    while i < split.len() {
        let hit = LEXICON.iter().find(|en| {
            en.words.len() <= split.len() - i && en.words.iter().enumerate().all(|(k, w)| split[i + k].1 == *w)
        });
        match hit {
            Some(en) => {
                // A phrase is negated when its last word is (the head: "without a big nose").
                let neg = split[i + en.words.len() - 1].0;
                let v = en.value != neg;
                match said.iter_mut().find(|s| s.0 == en.attr) {
                    Some(s) if s.1 != v => s.2 = true,
                    Some(_) => {}
                    None => said.push((en.attr, v, false)),
                }
                i += en.words.len();
            }
            None => i += 1,
        }
    }
    said.into_iter().filter(|s| !s.2).map(|s| (s.0, s.1)).collect()
}

/// A face's annotations by name: `has("Male")`; names the row lacks read as absent.
struct Row<'a> {
    names: &'a [String],
    values: &'a [u8],
}

impl Row<'_> {
    fn has(&self, name: &str) -> bool {
        self.names.iter().position(|n| n == name).is_some_and(|j| self.values.get(j) == Some(&1))
    }
    fn knows(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

fn article(first: &str) -> &'static str {
    if first.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// "x", "x and y", "x, y and z".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Several captions of one face (deterministic, ≥ 1, distinct) from its attribute row (`values[j]`
/// is 1 where `names[j]` is present). Attributes the row does not name are not said.
pub fn captions(names: &[String], values: &[u8]) -> Vec<String> {
    let r = Row { names, values };
    let male = r.has("Male");
    let noun = if male { "man" } else { "woman" };
    let age = if !r.knows("Young") {
        None
    } else if r.has("Young") {
        Some("young")
    } else {
        Some("older")
    };
    let mut adjs: Vec<&str> = Vec::new();
    if r.has("Smiling") {
        adjs.push("smiling");
    }
    if r.has("Chubby") {
        adjs.push("chubby");
    }
    adjs.extend(age);
    if r.has("Bald") {
        adjs.push("bald");
    }
    let phrase = |words: &[&str]| {
        let all: Vec<&str> = words.iter().copied().chain(std::iter::once(noun)).collect();
        format!("{} {}", article(all[0]), all.join(" "))
    };
    let subject = phrase(&adjs);
    let plain = phrase(&age.into_iter().collect::<Vec<_>>());

    // Hair: colour, then style ("blond wavy hair").
    let colour = [("Blond_Hair", "blond"), ("Black_Hair", "black"), ("Brown_Hair", "brown"), ("Gray_Hair", "gray")]
        .iter()
        .find(|(n, _)| r.has(n))
        .map(|p| p.1);
    let style = [("Wavy_Hair", "wavy"), ("Straight_Hair", "straight")].iter().find(|(n, _)| r.has(n)).map(|p| p.1);
    let hair = match (colour, style) {
        (None, None) => None,
        (c, s) => Some(format!("{} hair", c.into_iter().chain(s).collect::<Vec<_>>().join(" "))),
    };
    let facial: &[(&str, &str)] = &[
        ("Mustache", "a mustache"),
        ("Goatee", "a goatee"),
        ("5_o_Clock_Shadow", "stubble"),
        ("Sideburns", "sideburns"),
    ];
    let beard = male && r.knows("No_Beard") && !r.has("No_Beard");
    let mut salient: Vec<String> = hair.clone().into_iter().collect();
    if r.has("Eyeglasses") {
        salient.push("eyeglasses".into());
    }
    if r.has("Wearing_Hat") {
        salient.push("a hat".into());
    }
    if beard {
        salient.push("a beard".into());
    }
    if male {
        salient.extend(facial.iter().filter(|(n, _)| r.has(n)).map(|(_, w)| w.to_string()));
    } else {
        salient.extend(
            [("Heavy_Makeup", "heavy makeup"), ("Wearing_Lipstick", "lipstick")]
                .iter()
                .filter(|(n, _)| r.has(n))
                .map(|(_, w)| w.to_string()),
        );
    }
    // Everything present, in a fixed order.
    let mut all: Vec<String> = hair.into_iter().collect();
    let mut add = |name: &str, words: &str| {
        // "Beard": the absence of No_Beard, said of men.
        if if name == "Beard" { beard } else { r.has(name) } {
            all.push(words.to_string());
        }
    };
    add("Bangs", "bangs");
    add("Receding_Hairline", "a receding hairline");
    add("Eyeglasses", "eyeglasses");
    add("Wearing_Hat", "a hat");
    add("Beard", "a beard");
    if male {
        for (n, w) in facial {
            add(n, w);
        }
    }
    add("Heavy_Makeup", "heavy makeup");
    add("Wearing_Lipstick", "lipstick");
    add("Wearing_Earrings", "earrings");
    add("Wearing_Necklace", "a necklace");
    add("Wearing_Necktie", "a necktie");
    add("High_Cheekbones", "high cheekbones");
    add("Rosy_Cheeks", "rosy cheeks");
    add("Arched_Eyebrows", "arched eyebrows");
    add("Bushy_Eyebrows", "bushy eyebrows");
    add("Big_Nose", "a big nose");
    add("Big_Lips", "big lips");
    add("Double_Chin", "a double chin");
    add("Bags_Under_Eyes", "bags under the eyes");
    add("Mouth_Slightly_Open", "an open mouth");
    add("Pale_Skin", "pale skin");

    let with = |items: &[String]| if items.is_empty() { String::new() } else { format!(" with {}", list(items)) };
    let mut out = vec![format!("{subject}{}", with(&all))];
    // Salient, then the negations worth saying.
    let mut second = format!("{}{}", phrase(&age.into_iter().collect::<Vec<_>>()), with(&salient));
    let absent: Vec<&str> = [("Eyeglasses", "eyeglasses"), ("Wearing_Hat", "a hat")]
        .iter()
        .filter(|(n, _)| r.knows(n) && !r.has(n))
        .map(|p| p.1)
        .collect();
    if !absent.is_empty() {
        second.push_str(&format!(", without {}", absent.join(" or ")));
    }
    if male && r.knows("No_Beard") && r.has("No_Beard") {
        second.push_str(", clean-shaven");
    }
    if r.knows("Smiling") {
        second.push_str(if r.has("Smiling") { ", smiling" } else { ", not smiling" });
    }
    out.push(second);
    out.push(subject);
    out.push(format!("{plain}{}", with(&salient.iter().take(2).cloned().collect::<Vec<_>>())));
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CelebA's 40, in its file's order.
    const NAMES: &str = "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose \
        Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup \
        High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose \
        Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat \
        Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young";

    fn names() -> Vec<String> {
        NAMES.split_whitespace().map(String::from).collect()
    }

    fn row(present: &[&str]) -> Vec<u8> {
        names().iter().map(|n| u8::from(present.contains(&n.as_str()))).collect()
    }

    #[test]
    fn a_face_gets_the_sentences_its_row_describes() {
        let v = row(&["Smiling", "Young", "Blond_Hair", "Wavy_Hair", "Bangs", "Wearing_Lipstick", "No_Beard"]);
        let c = captions(&names(), &v);
        assert_eq!(c[0], "a smiling young woman with blond wavy hair, bangs and lipstick");
        assert_eq!(c[1], "a young woman with blond wavy hair and lipstick, without eyeglasses or a hat, smiling");
        assert_eq!(c[2], "a smiling young woman");
        assert_eq!(c[3], "a young woman with blond wavy hair and lipstick");
        let m = row(&["Male", "Gray_Hair", "Eyeglasses", "Mustache"]);
        let c = captions(&names(), &m);
        assert_eq!(c[0], "an older man with gray hair, eyeglasses, a beard and a mustache");
        assert_eq!(c[1], "an older man with gray hair, eyeglasses, a beard and a mustache, without a hat, not smiling");
        let shaven = captions(&names(), &row(&["Male", "Young", "No_Beard", "Smiling", "Wearing_Hat"]));
        assert_eq!(shaven[1], "a young man with a hat, without eyeglasses, clean-shaven, smiling");
    }

    #[test]
    fn negation_scope_ends_at_punctuation_and_with() {
        assert_eq!(
            scoped_tokens("a man without eyeglasses or a hat, smiling"),
            ["a", "man", "without", "not:eyeglasses", "not:or", "not:a", "not:hat", "smiling"]
        );
        assert_eq!(scoped_tokens("no beard but a hat"), ["no", "not:beard", "but", "a", "hat"]);
        // Typed synonyms become the grammar's words.
        assert_eq!(
            scoped_tokens("an old man with grey hair, glasses"),
            ["an", "older", "man", "with", "gray", "hair", "eyeglasses"]
        );
        // The same bag of words, told apart by scope.
        let a = scoped_tokens("a man with eyeglasses, without a hat");
        let b = scoped_tokens("a man with a hat, without eyeglasses");
        let bag = |t: &str| {
            let mut w = tokenize(t);
            w.sort();
            w
        };
        assert_eq!(bag("a man with eyeglasses, without a hat"), bag("a man with a hat, without eyeglasses"));
        assert!(a.contains(&"not:hat".to_string()) && b.contains(&"not:eyeglasses".to_string()));
        assert_eq!(
            statements("a man with eyeglasses, without a hat"),
            [("Male", true), ("Eyeglasses", true), ("Wearing_Hat", false)]
        );
        assert_eq!(
            statements("a man with a hat, without eyeglasses")[1..],
            [("Wearing_Hat", true), ("Eyeglasses", false)]
        );
        assert_eq!(statements("a woman with no beard"), [("Male", false), ("No_Beard", true)]);
        assert_eq!(
            statements("a man who is not smiling and has a big nose"),
            [("Male", true), ("Smiling", false), ("Big_Nose", true)]
        );
        // A self-contradiction states neither side.
        assert_eq!(statements("a man who is a woman with eyeglasses"), [("Eyeglasses", true)]);
    }
}
