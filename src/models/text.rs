//! What a text-conditioned model knows about language — its vocabulary, class words and attribute
//! thresholds — and captions as the bag-of-words matrices its text encoders read.

use crate::data::captions::faces::{NOT, scoped_tokens};
use crate::data::captions::{Thresholds, tokenize};
use anyhow::{Result, bail};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// What a text-conditioned model knows about language: its vocabulary (the training captions'
/// words), the words naming each class (for `--class` and per-class grids) and, for generated
/// captions, the attribute thresholds that agreement is scored with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextSpec {
    pub vocab: Vec<String>,
    pub class_words: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// Words are read with negation scope (`captions::faces::scoped_tokens`): inside "without …"
    /// a word is `not:word`, its own entry of the vocabulary. Runs from before it read plain words.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negation: bool,
    /// Real training captions, for samples nobody wrote a caption for (where there are no class
    /// captions to cycle: faces); cycled in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// The encoders read word counts (the sum of the word embeddings) instead of the mean. Face
    /// captions are 5–25 words: averaged, their vectors barely differ at initialisation, and on
    /// 528 faces neither discriminator learned to read them in 900 steps (stage II balanced
    /// agreement on Male 0.50); summed, 0.90 (the classifier's ceiling there 0.83). Runs from
    /// before it read the mean.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub summed: bool,
}

impl TextSpec {
    /// Token ids of a typed caption; words the model never saw are an error naming them.
    pub fn tokens(&self, caption: &str) -> Result<Vec<u32>> {
        let words = self.words(caption);
        if words.is_empty() {
            bail!("caption {caption:?} has no words");
        }
        let unknown: Vec<String> = words
            .iter()
            .filter(|w| self.vocab.binary_search(w).is_err())
            .map(|w| match w.strip_prefix(NOT) {
                Some(plain) => format!("'{plain}' after a negation"),
                None => format!("'{w}'"),
            })
            .collect();
        if !unknown.is_empty() {
            let shown: Vec<&str> =
                self.vocab.iter().filter(|w| !w.starts_with(NOT)).take(60).map(|s| s.as_str()).collect();
            bail!(
                "caption {caption:?}: {} never seen in training ({}); the model knows {} words: {}{}",
                if unknown.len() == 1 { "word" } else { "words" },
                unknown.join(", "),
                self.vocab.len(),
                shown.join(" "),
                if self.vocab.len() > shown.len() { " …" } else { "" }
            );
        }
        Ok(self.ids(&words))
    }

    /// Token ids of kept training caption `i` (cycled).
    pub fn example_tokens(&self, i: usize) -> Vec<u32> {
        self.tokens_lossy(&self.examples[i % self.examples.len().max(1)])
    }

    /// Captions made from annotations (faces): no class words, real training captions kept.
    pub fn annotated(&self) -> bool {
        self.class_words.is_empty() && !self.examples.is_empty()
    }

    /// Token ids of a held-out caption, skipping words outside the vocabulary.
    pub fn tokens_lossy(&self, caption: &str) -> Vec<u32> {
        self.ids(&self.words(caption))
    }

    /// The caption's words as the encoder reads them (with negation scope where the run has it).
    pub fn words(&self, caption: &str) -> Vec<String> {
        if self.negation { scoped_tokens(caption) } else { tokenize(caption) }
    }

    fn ids(&self, words: &[String]) -> Vec<u32> {
        words.iter().filter_map(|w| self.vocab.binary_search(w).ok()).map(|i| i as u32).collect()
    }

    /// The caption that asks for a class and nothing else ("a seven", "an ankle boot").
    pub fn class_caption(&self, class: usize) -> String {
        self.phrase(&[], class)
    }

    /// "a w1 w2 … class" with the right article ("an upright seven").
    pub fn phrase(&self, words: &[&str], class: usize) -> String {
        let mut all: Vec<&str> = words.to_vec();
        all.push(self.class_words.get(class).map_or("", |s| s.as_str()));
        let article = if all[0].starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {}", all.join(" "))
    }

    /// The captions of the picture every run ends with: one class ("seven" where there are ten)
    /// alone, then with each attribute word in turn.
    pub fn showcase(&self) -> Vec<String> {
        if self.annotated() {
            return FACE_SHOWCASE.iter().map(|s| s.to_string()).filter(|s| self.tokens(s).is_ok()).collect();
        }
        let k = 7 % self.class_words.len().max(1);
        let mut rows = vec![self.class_caption(k)];
        if let Some(th) = &self.thresholds {
            for (_, words) in th.set.attributes() {
                rows.extend(words.iter().map(|w| self.phrase(&[w], k)));
            }
        }
        rows
    }

    /// Token ids of the class captions of `labels`; a model without classes (faces) reads label l
    /// as its l-th kept training caption (so one label is one caption for every row).
    pub fn class_tokens(&self, labels: &[u8]) -> Vec<Vec<u32>> {
        if self.annotated() {
            return labels.iter().map(|&l| self.example_tokens(l as usize)).collect();
        }
        let per_class: Vec<Vec<u32>> =
            (0..self.class_words.len().max(1)).map(|k| self.tokens_lossy(&self.class_caption(k))).collect();
        labels.iter().map(|&l| per_class.get(l as usize).cloned().unwrap_or_default()).collect()
    }
}

/// The rows of a face run's `final/captions.png` (those whose words the run knows).
pub const FACE_SHOWCASE: [&str; 8] = [
    "a smiling young woman with blond wavy hair",
    "a young woman with black straight hair, not smiling",
    "an older man with gray hair and eyeglasses",
    "a young man with black hair, without eyeglasses, clean-shaven",
    "a smiling man with a beard and a mustache",
    "a young woman with brown hair, heavy makeup and lipstick",
    "a bald older man",
    "a smiling young woman with bangs and a hat",
];

impl TextSpec {
    /// Captions as the encoders' input rows on the host [captions × vocab] (`bags_host`, or word
    /// counts where the run sums).
    pub fn bags<C: AsRef<[u32]>>(&self, captions: &[C]) -> Vec<f32> {
        let v = self.vocab.len().max(1);
        if self.summed { counts_host(captions, v) } else { bags_host(captions, v) }
    }
}

/// Word counts on the host [captions × vocab].
pub fn counts_host<C: AsRef<[u32]>>(captions: &[C], vocab: usize) -> Vec<f32> {
    rows_host(captions, vocab, false)
}

/// Captions as bags of words on the host [captions × vocab]: row i holds caption i's word counts
/// divided by its length (so the encoder's linear layer computes the mean word embedding).
pub fn bags_host<C: AsRef<[u32]>>(captions: &[C], vocab: usize) -> Vec<f32> {
    rows_host(captions, vocab, true)
}

/// Word counts per caption row, divided by the caption's length when `mean`.
fn rows_host<C: AsRef<[u32]>>(captions: &[C], vocab: usize, mean: bool) -> Vec<f32> {
    let mut v = vec![0f32; captions.len() * vocab];
    for (row, c) in v.chunks_mut(vocab.max(1)).zip(captions) {
        let c = c.as_ref();
        let w = if mean { 1.0 / c.len().max(1) as f32 } else { 1.0 };
        for &t in c {
            if let Some(x) = row.get_mut(t as usize) {
                *x += w;
            }
        }
    }
    v
}

/// `bags_host` as a tensor on `device`.
pub fn bag_of_words(captions: &[Vec<u32>], vocab: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(bags_host(captions, vocab), [captions.len(), vocab]), device)
}

/// `TextSpec::bags` as a tensor on `device`.
pub fn bags_tensor(text: &TextSpec, captions: &[Vec<u32>], device: &Device) -> Tensor<2> {
    let v = text.vocab.len().max(1);
    Tensor::from_data(TensorData::new(text.bags(captions), [captions.len(), v]), device)
}
