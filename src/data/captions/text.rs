//! Caption text: class words, generated phrasings, the tokeniser, and what a caption asks for.

use super::attributes::{ATTRS, AttributeSet, Level, Thresholds};

const NUMBER_WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

/// Words naming each class: "0".."9" → "zero".."nine"; other names lowercased ("T-shirt/top" →
/// "t-shirt/top", "Ankle boot" → "ankle boot").
pub fn class_words(class_names: &[String]) -> Vec<String> {
    class_names
        .iter()
        .map(|n| match n.trim().parse::<usize>() {
            Ok(d) if d < 10 && n.trim().len() == 1 => NUMBER_WORDS[d].to_string(),
            _ => n.trim().to_lowercase(),
        })
        .collect()
}

/// "a" or "an" before `word`, by its first letter ("an eight", "an ankle boot", "a seven"), except
/// for words that start with a consonant sound ("a one", "a unicorn", "a european").
fn article(word: &str) -> &'static str {
    let w = word.to_lowercase();
    let vowel = w.starts_with(['a', 'e', 'i', 'o', 'u']);
    let consonant_sound = ["one", "uni", "use", "usu", "eu"].iter().any(|p| w.starts_with(p));
    if vowel && !consonant_sound { "an" } else { "a" }
}

/// The mentioned words of `levels`: Low → low word, High → high word, Mid → none.
fn words(set: AttributeSet, levels: [Level; ATTRS]) -> Vec<&'static str> {
    set.attributes()
        .iter()
        .zip(levels)
        .filter_map(|((_, [lo, hi]), l)| match l {
            Level::Low => Some(*lo),
            Level::High => Some(*hi),
            Level::Mid => None,
        })
        .collect()
}

/// Several phrasings of one image's caption (deterministic order, ≥ 2 distinct): "a w1 w2 … c";
/// "a c that is w1 and w2" (none mentioned: "a picture of a c"); "a w c" for each mentioned word.
pub fn phrasings(set: AttributeSet, class_word: &str, levels: [Level; ATTRS]) -> Vec<String> {
    let c = class_word;
    let w = words(set, levels);
    let mut out = Vec::with_capacity(2 + w.len());
    let first = w.first().copied().unwrap_or(c);
    out.push(format!(
        "{} {}",
        article(first),
        w.iter().chain(std::iter::once(&c)).copied().collect::<Vec<_>>().join(" ")
    ));
    let a = article(c);
    out.push(match w.as_slice() {
        [] => format!("a picture of {a} {c}"),
        [w1] => format!("{a} {c} that is {w1}"),
        [rest @ .., last] => format!("{a} {c} that is {} and {last}", rest.join(", ")),
    });
    for wi in &w {
        out.push(format!("{} {wi} {c}", article(wi)));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Lowercase; split on whitespace (and on punctuation inside a word other than '-', '/' and '\'');
/// strip leading/trailing punctuation (inner '-', '/' and '\'' are kept); drop empty tokens.
/// "A thick, slanted Seven." → ["a", "thick", "slanted", "seven"]; "t-shirt/top" stays one token.
pub fn tokenize(caption: &str) -> Vec<String> {
    let inner = |c: char| c == '-' || c == '/' || c == '\'';
    caption
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || (!c.is_alphanumeric() && !inner(c)))
        .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// What a caption asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// Index into the class words of the class it names, if any.
    pub class: Option<usize>,
    /// Each attribute's asked-for level: its low or high word present → Low/High; neither (or
    /// both) → None.
    pub levels: [Option<Level>; ATTRS],
}

/// What a caption asks for: the class (a class word's tokens appear in order, as a sequence, so
/// "ankle boot" matches as two tokens; the longest match wins, then the earliest in the caption, then
/// the first class) and each attribute's level. Tokens that are part of the class match are not
/// read as attribute words.
pub fn intent(caption: &str, set: AttributeSet, class_words: &[String]) -> Intent {
    let tokens = tokenize(caption);
    // (token count, chars, start) of the best match so far.
    let mut best: Option<(usize, usize, usize, usize)> = None;
    for (k, cw) in class_words.iter().enumerate() {
        let ct = tokenize(cw);
        if ct.is_empty() || ct.len() > tokens.len() {
            continue;
        }
        let chars: usize = ct.iter().map(|t| t.len()).sum();
        if let Some(start) = tokens.windows(ct.len()).position(|win| win == ct.as_slice()) {
            let better = match best {
                None => true,
                Some((n, ch, s, _)) => (ct.len(), chars, std::cmp::Reverse(start)) > (n, ch, std::cmp::Reverse(s)),
            };
            if better {
                best = Some((ct.len(), chars, start, k));
            }
        }
    }
    let span = best.map(|(n, _, s, _)| s..s + n).unwrap_or(0..0);
    let rest: Vec<&str> =
        tokens.iter().enumerate().filter(|(i, _)| !span.contains(i)).map(|(_, t)| t.as_str()).collect();
    let levels = set.attributes().map(|(_, [lo, hi])| match (rest.contains(&lo), rest.contains(&hi)) {
        (true, false) => Some(Level::Low),
        (false, true) => Some(Level::High),
        _ => None,
    });
    Intent { class: best.map(|b| b.3), levels }
}

/// For each attribute the caption names: does the measured value fall in that level for the
/// intended class (class from the caption, else `fallback_class`)? None where the caption names
/// nothing.
pub fn attribute_hits(
    intent: &Intent,
    measured: [f32; ATTRS],
    th: &Thresholds,
    fallback_class: usize,
) -> [Option<bool>; ATTRS] {
    let class = intent.class.unwrap_or(fallback_class);
    std::array::from_fn(|a| intent.levels[a].map(|l| th.level(class, a, measured[a]) == l))
}
