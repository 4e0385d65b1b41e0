//! Latent vector arithmetic (Radford et al. 2016): average the codes of three groups and decode
//! mean(A) − mean(B) + mean(C). A group is `label:K` (mean encoder code of test images of class K;
//! encoder models), `label:K:thick` / `label:K:thin` (the quarter of class K with the most / least
//! ink, for stroke-width arithmetic such as thick 3 − thin 3 + thin 7 = thick 7), or `sample:I,J,…` (codes I, J, … of the prior draws that `sample --seed S`
//! makes, so any model — GANs included — can be used by picking images from a sample sheet), or
//! `attr:Smiling,-Male` (faces that have every named attribute and lack every one with a minus:
//! the mean code of such test faces for encoder models; for GANs, which have no encoder, the mean
//! prior draw of the samples the attribute classifier puts in the group, as Radford et al. averaged
//! samples they had picked by eye).

use anyhow::{Result, bail};

/// A parsed group specification.
#[derive(Clone, Debug, PartialEq)]
pub enum Group {
    Label(u8, Stroke),
    Samples(Vec<usize>),
    /// Attribute names with whether the face has (true) or lacks (false) each.
    Attr(Vec<(String, bool)>),
}

impl Group {
    /// The attributes a group states (none for label and sample groups).
    pub fn attributes(&self) -> &[(String, bool)] {
        match self {
            Group::Attr(a) => a,
            _ => &[],
        }
    }
}

/// What A − B + C should show, attribute by attribute: with present = +1, absent = −1 and unstated
/// = 0, the sign of a − b + c (smiling woman − neutral woman + neutral man: Smiling +1 + 1 − 1 > 0,
/// Male −1 + 1 + 1 > 0: a smiling man). Attributes that cancel to 0 are not stated.
pub fn target(a: &Group, b: &Group, c: &Group) -> Vec<(String, bool)> {
    let mut names: Vec<&String> = Vec::new();
    for (n, _) in a.attributes().iter().chain(b.attributes()).chain(c.attributes()) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let v =
        |g: &Group, n: &String| g.attributes().iter().find(|(m, _)| m == n).map_or(0, |(_, p)| if *p { 1 } else { -1 });
    names
        .into_iter()
        .filter_map(|n| {
            let s = v(a, n) - v(b, n) + v(c, n);
            (s != 0).then(|| (n.clone(), s > 0))
        })
        .collect()
}

/// Whether an attribute row (1 = present) has every stated attribute, given each one's column.
pub fn matches(row: &[u8], stated: &[(usize, bool)]) -> bool {
    stated.iter().all(|&(j, want)| (row[j] == 1) == want)
}

/// Which part of a class, by total ink (sum of pixel values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stroke {
    Any,
    Thick,
    Thin,
}

/// Of `idx` (images of one class) with their ink, those of the requested stroke: the top or bottom
/// quarter by ink, or all.
pub fn select_stroke(mut idx_ink: Vec<(usize, u64)>, stroke: Stroke) -> Vec<usize> {
    idx_ink.sort_by_key(|&(i, ink)| (ink, i));
    let q = (idx_ink.len() / 4).max(1);
    let n = idx_ink.len();
    match stroke {
        Stroke::Any => idx_ink.into_iter().map(|p| p.0).collect(),
        Stroke::Thin => idx_ink.into_iter().take(q).map(|p| p.0).collect(),
        Stroke::Thick => idx_ink.into_iter().skip(n - q.min(n)).map(|p| p.0).collect(),
    }
}

impl std::str::FromStr for Group {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Group, String> {
        let bad = || {
            format!(
                "'{s}': expected label:K, label:K:thick, label:K:thin (e.g. label:7), sample:I,J,… (e.g. sample:3,12) \
                 or attr:NAME,-NAME,… (e.g. attr:Smiling,-Male)"
            )
        };
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "label" => {
                let (k, stroke) = match rest.split_once(':') {
                    None => (rest, Stroke::Any),
                    Some((k, "thick")) => (k, Stroke::Thick),
                    Some((k, "thin")) => (k, Stroke::Thin),
                    Some(_) => return Err(bad()),
                };
                k.trim().parse().map(|k| Group::Label(k, stroke)).map_err(|_| bad())
            }
            "sample" => {
                let v: std::result::Result<Vec<usize>, _> = rest.split(',').map(|t| t.trim().parse()).collect();
                match v {
                    Ok(v) if !v.is_empty() => Ok(Group::Samples(v)),
                    _ => Err(bad()),
                }
            }
            "attr" => {
                let mut v = Vec::new();
                for t in rest.split(',').map(str::trim) {
                    let (name, has) = match t.strip_prefix('-') {
                        Some(n) => (n, false),
                        None => (t.strip_prefix('+').unwrap_or(t), true),
                    };
                    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(bad());
                    }
                    if v.iter().any(|(n, _): &(String, bool)| n == name) {
                        return Err(format!("'{s}': attribute {name} is named twice"));
                    }
                    v.push((name.to_string(), has));
                }
                Ok(Group::Attr(v))
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
        assert_eq!("label:7".parse::<Group>().unwrap(), Group::Label(7, Stroke::Any));
        assert_eq!("label:3:thick".parse::<Group>().unwrap(), Group::Label(3, Stroke::Thick));
        assert!("label:3:bold".parse::<Group>().is_err());
        assert_eq!("sample:1, 5".parse::<Group>().unwrap(), Group::Samples(vec![1, 5]));
        assert!("label:x".parse::<Group>().unwrap_err().contains("label:K"));
        assert!("seven".parse::<Group>().is_err());
    }

    #[test]
    fn attribute_groups_parse_and_combine_as_the_paper_reads_them() {
        let g = |s: &str| s.parse::<Group>().unwrap();
        assert_eq!(g("attr:Smiling,-Male"), Group::Attr(vec![("Smiling".into(), true), ("Male".into(), false)]));
        assert!("attr:".parse::<Group>().is_err());
        assert!("attr:Smiling,,Male".parse::<Group>().is_err());
        assert!("attr:Smiling,-Smiling".parse::<Group>().unwrap_err().contains("named twice"));
        // smiling woman − neutral woman + neutral man = smiling man
        let t = target(&g("attr:Smiling,-Male"), &g("attr:-Smiling,-Male"), &g("attr:-Smiling,Male"));
        assert_eq!(t, vec![("Smiling".to_string(), true), ("Male".to_string(), true)]);
        // man with glasses − man without + woman without = woman with glasses
        let t = target(&g("attr:Eyeglasses,Male"), &g("attr:-Eyeglasses,Male"), &g("attr:-Eyeglasses,-Male"));
        assert_eq!(t, vec![("Eyeglasses".to_string(), true), ("Male".to_string(), false)]);
        // A − A + C = C; label groups state nothing.
        assert_eq!(target(&g("attr:Bald"), &g("attr:Bald"), &g("attr:-Young")), vec![("Young".to_string(), false)]);
        assert!(target(&g("label:3"), &g("label:3"), &g("sample:1")).is_empty());
        assert!(matches(&[1, 0, 1], &[(0, true), (1, false)]));
        assert!(!matches(&[1, 0, 1], &[(2, false)]));
    }

    #[test]
    fn stroke_selects_quarters_by_ink() {
        let v: Vec<(usize, u64)> = (0..8).map(|i| (i, (8 - i) as u64 * 10)).collect();
        assert_eq!(select_stroke(v.clone(), Stroke::Thick), vec![1, 0]);
        assert_eq!(select_stroke(v.clone(), Stroke::Thin), vec![7, 6]);
        assert_eq!(select_stroke(v, Stroke::Any).len(), 8);
    }
}
