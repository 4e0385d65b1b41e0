//! Latent vector arithmetic (Radford et al. 2016): average the codes of three groups and decode
//! mean(A) − mean(B) + mean(C). A group is `label:K` (mean encoder code of test images of class K;
//! encoder models) or `sample:I,J,…` (codes I, J, … of the prior draws that `sample --seed S`
//! makes, so any model — GANs included — can be used by picking images from a sample sheet).

use anyhow::{Result, bail};

/// A parsed group specification.
#[derive(Clone, Debug, PartialEq)]
pub enum Group {
    Label(u8),
    Samples(Vec<usize>),
}

impl std::str::FromStr for Group {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Group, String> {
        let bad = || format!("'{s}': expected label:K (e.g. label:7) or sample:I,J,… (e.g. sample:3,12,40)");
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "label" => rest.trim().parse().map(Group::Label).map_err(|_| bad()),
            "sample" => {
                let v: std::result::Result<Vec<usize>, _> = rest.split(',').map(|t| t.trim().parse()).collect();
                match v {
                    Ok(v) if !v.is_empty() => Ok(Group::Samples(v)),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

/// Mean of row vectors.
pub fn mean(rows: &[Vec<f32>]) -> Result<Vec<f32>> {
    let Some(first) = rows.first() else { bail!("a group selected no codes") };
    let mut m = vec![0f64; first.len()];
    for r in rows {
        for (a, &b) in m.iter_mut().zip(r) {
            *a += b as f64;
        }
    }
    Ok(m.into_iter().map(|v| (v / rows.len() as f64) as f32).collect())
}

/// mean(A) − mean(B) + mean(C), and the three means.
pub fn combine(a: &[Vec<f32>], b: &[Vec<f32>], c: &[Vec<f32>]) -> Result<[Vec<f32>; 4]> {
    let (ma, mb, mc) = (mean(a)?, mean(b)?, mean(c)?);
    let r = ma.iter().zip(&mb).zip(&mc).map(|((x, y), z)| x - y + z).collect();
    Ok([ma, mb, mc, r])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_groups_give_the_group_mean() {
        let g = vec![vec![1.0, 2.0], vec![3.0, -2.0]];
        let [ma, _, _, r] = combine(&g, &g, &g).unwrap();
        assert_eq!(ma, vec![2.0, 0.0]);
        assert_eq!(r, ma);
        let [_, _, _, r] = combine(&[vec![5.0, 5.0]], &[vec![1.0, 2.0]], &[vec![0.0, 1.0]]).unwrap();
        assert_eq!(r, vec![4.0, 4.0]);
        assert!(combine(&[], &g, &g).is_err());
    }

    #[test]
    fn group_specs_parse_or_explain() {
        assert_eq!("label:7".parse::<Group>().unwrap(), Group::Label(7));
        assert_eq!("sample:1, 5".parse::<Group>().unwrap(), Group::Samples(vec![1, 5]));
        assert!("label:x".parse::<Group>().unwrap_err().contains("label:K"));
        assert!("seven".parse::<Group>().is_err());
    }
}
