//! What a text-conditioned model knows about language — its vocabulary, class words and attribute
//! thresholds — and captions as the bag-of-words matrices its text encoders read.

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
}

impl TextSpec {
    /// Token ids of a typed caption; words the model never saw are an error naming them.
    pub fn tokens(&self, caption: &str) -> Result<Vec<u32>> {
        let words = tokenize(caption);
        if words.is_empty() {
            bail!("caption {caption:?} has no words");
        }
        let unknown: Vec<&str> =
            words.iter().filter(|w| self.vocab.binary_search(w).is_err()).map(|w| w.as_str()).collect();
        if !unknown.is_empty() {
            let shown: Vec<&str> = self.vocab.iter().take(60).map(|s| s.as_str()).collect();
            bail!(
                "caption {caption:?}: {} never seen in training ({}); the model knows {} words: {}{}",
                if unknown.len() == 1 { "word" } else { "words" },
                unknown.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(", "),
                self.vocab.len(),
                shown.join(" "),
                if self.vocab.len() > shown.len() { " …" } else { "" }
            );
        }
        Ok(self.ids(&words))
    }

    /// Token ids of a held-out caption, skipping words outside the vocabulary.
    pub fn tokens_lossy(&self, caption: &str) -> Vec<u32> {
        self.ids(&tokenize(caption))
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
        let k = 7 % self.class_words.len().max(1);
        let mut rows = vec![self.class_caption(k)];
        if let Some(th) = &self.thresholds {
            for (_, words) in th.set.attributes() {
                rows.extend(words.iter().map(|w| self.phrase(&[w], k)));
            }
        }
        rows
    }

    /// Token ids of the class captions of `labels`.
    pub fn class_tokens(&self, labels: &[u8]) -> Vec<Vec<u32>> {
        let per_class: Vec<Vec<u32>> =
            (0..self.class_words.len().max(1)).map(|k| self.tokens_lossy(&self.class_caption(k))).collect();
        labels.iter().map(|&l| per_class.get(l as usize).cloned().unwrap_or_default()).collect()
    }
}

/// Captions as bags of words on the host [captions × vocab]: row i holds caption i's word counts
/// divided by its length (so the encoder's linear layer computes the mean word embedding).
pub fn bags_host<C: AsRef<[u32]>>(captions: &[C], vocab: usize) -> Vec<f32> {
    let mut v = vec![0f32; captions.len() * vocab];
    for (row, c) in v.chunks_mut(vocab.max(1)).zip(captions) {
        let c = c.as_ref();
        let w = 1.0 / c.len().max(1) as f32;
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
