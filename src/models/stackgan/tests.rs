use super::*;
use crate::models::blocks::to_vec;

fn spec_text() -> TextSpec {
    let mut vocab: Vec<String> = ["a", "an", "seven", "eight", "thin", "thick"].iter().map(|s| s.to_string()).collect();
    vocab.sort();
    TextSpec { vocab, class_words: vec!["seven".into(), "eight".into()], thresholds: None, negation: false, examples: Vec::new(), summed: false }
}

/// With the encoder's output fixed to known (μ, log σ²), c and the KL match their formulas
/// computed here in f64.
#[test]
fn conditioning_augmentation_matches_its_formulas() {
    let device = Device::flex();
    let rng = &mut crate::util::rng(1, crate::util::Stream::Init, 0);
    let mut ca = CondAug::new(3, rng, &device);
    let mu: Vec<f32> = (0..CA_DIM).map(|i| 0.1 * i as f32 - 0.5).collect();
    let lv: Vec<f32> = (0..CA_DIM).map(|i| -1.0 + 0.12 * i as f32).collect();
    ca.fc.weight = burn::module::Param::from_tensor(Tensor::zeros([TEXT_DIM, 2 * CA_DIM], &device));
    ca.fc.bias = Some(burn::module::Param::from_data(TensorData::new([mu.clone(), lv.clone()].concat(), [2 * CA_DIM]), &device));
    let eps: Vec<f32> = (0..2 * CA_DIM).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.3).collect();
    let bow = bag_of_words(&[vec![0], vec![1, 2]], 3, &device);
    let (c, kl) = ca.forward(bow, Tensor::from_data(TensorData::new(eps.clone(), [2, CA_DIM]), &device));
    let c = to_vec(c);
    for row in 0..2 {
        for j in 0..CA_DIM {
            let want = mu[j] as f64 + (0.5 * lv[j] as f64).exp() * eps[row * CA_DIM + j] as f64;
            assert!((c[row * CA_DIM + j] as f64 - want).abs() < 1e-5, "c[{row}][{j}]");
        }
    }
    let want: f64 = (0..CA_DIM)
        .map(|j| 0.5 * ((lv[j] as f64).exp() + (mu[j] as f64).powi(2) - lv[j] as f64 - 1.0))
        .sum::<f64>()
        / CA_DIM as f64;
    let kl = to_vec(kl)[0] as f64;
    assert!((kl - want).abs() < 1e-5, "KL {kl} vs {want}");
    assert!(want > 0.1, "the test's Gaussian is far enough from N(0, I) to matter");
}

#[test]
fn unknown_words_are_named_and_known_ones_tokenised() {
    let t = spec_text();
    let e = t.tokens("A thick purple seven, mauve").unwrap_err().to_string();
    assert!(e.contains("'purple'") && e.contains("'mauve'") && e.contains("never seen in training"), "{e}");
    assert!(!e.contains("'thick'"), "{e}");
    assert!(t.tokens("  ,. ").unwrap_err().to_string().contains("no words"));
    let ids = t.tokens("a thick seven").unwrap();
    let words: Vec<&str> = ids.iter().map(|&i| t.vocab[i as usize].as_str()).collect();
    assert_eq!(words, ["a", "thick", "seven"]);
    assert_eq!(t.class_caption(1), "an eight");
    assert_eq!(t.phrase(&["thin"], 0), "a thin seven");
}

#[test]
fn a_bag_of_words_is_the_mean_of_one_hot_words() {
    let device = Device::flex();
    let b = to_vec(bag_of_words(&[vec![0, 2, 2, 3], vec![1]], 4, &device));
    assert_eq!(b, [0.25, 0.0, 0.5, 0.25, 0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn resampling_halves_and_doubles_exactly() {
    let device = Device::flex();
    let shape = ImageShape { channels: 1, height: 4, width: 4 };
    let x: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let d = to_vec(downsample2(Tensor::from_data(TensorData::new(x, [1, 16]), &device), shape));
    assert_eq!(d, [2.5, 4.5, 10.5, 12.5]);
    let u = to_vec(upsample2(Tensor::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 1, 2, 2]), &device)));
    assert_eq!(u, [1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]);
}
