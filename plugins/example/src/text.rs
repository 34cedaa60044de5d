//! The example plugin's text encoder, `toy-hash`: no download, deterministic, cheap. It is what
//! `shiftbench demo` builds a LAIONet-like suite with (`--encoder example`), and the template for
//! a plugin author's [`TextEncoder`].
//!
//! A text becomes a bag of features hashed into [`DIM`] buckets (the hashing trick, each feature
//! with a hashed sign): its words (lowercased runs of letters and digits, a few English function
//! words left out, a plural's final `s` dropped) with weight 1, and the character trigrams of each word padded with spaces with
//! weight [`TRIGRAM_WEIGHT`], so that `bananas` is still close to `banana`. A caption that shares
//! the words of a class's name and definition (`banana which is elongated crescent-shaped yellow
//! fruit`) is then similar to that class's query; one about something else is not. The host
//! L2-normalises the vectors.

use shiftbench_plugin::{TextEncoder, TextEncoderInfo, TextLoadRequest};

/// Values in one embedding.
pub const DIM: usize = 256;

/// The weight of one character trigram (a word weighs 1).
pub const TRIGRAM_WEIGHT: f32 = 0.25;

/// Words that say nothing about a class.
const STOPWORDS: [&str; 24] = [
    "a", "an", "and", "are", "as", "at", "by", "for", "from", "in", "into", "is", "it", "its", "of", "on", "or",
    "that", "the", "this", "to", "which", "with", "without",
];

/// FNV-1a, 64 bits: stable across platforms and releases (unlike `std`'s hasher).
fn fnv1a(bytes: &[u8], seed: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed as u64;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Adds `weight` for `feature` to its bucket, with its hashed sign.
fn add(v: &mut [f32; DIM], feature: &[u8], seed: u8, weight: f32) {
    let h = fnv1a(feature, seed);
    let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
    v[(h % DIM as u64) as usize] += sign * weight;
}

/// A plural's singular, crudely: `bananas` -> `banana`, `glass` and `is` unchanged.
fn stem(word: &str) -> &str {
    match word.strip_suffix('s') {
        Some(w) if w.len() >= 3 && !w.ends_with('s') => w,
        _ => word,
    }
}

/// The (unnormalised) embedding of one text.
pub fn embed(text: &str) -> [f32; DIM] {
    let mut v = [0f32; DIM];
    let lower = text.to_lowercase();
    for word in lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if STOPWORDS.contains(&word) {
            continue;
        }
        add(&mut v, stem(word).as_bytes(), 0, 1.0);
        let padded: Vec<char> = std::iter::once(' ').chain(word.chars()).chain(std::iter::once(' ')).collect();
        for t in padded.windows(3) {
            let s: String = t.iter().collect();
            add(&mut v, s.as_bytes(), 1, TRIGRAM_WEIGHT);
        }
    }
    v
}

/// The `toy-hash` encoder: stateless.
pub struct ToyHash;

impl TextEncoder for ToyHash {
    fn load(_request: &TextLoadRequest) -> Result<Self, String> {
        Ok(ToyHash)
    }

    fn info(&self) -> TextEncoderInfo {
        TextEncoderInfo { name: "toy-hash".into(), dim: DIM as u32, max_batch: 0 }
    }

    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>, String> {
        Ok(texts.iter().flat_map(|t| embed(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &str, b: &str) -> f32 {
        let (x, y) = (embed(a), embed(b));
        let dot: f32 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
        let n = |v: &[f32; DIM]| v.iter().map(|p| p * p).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
        dot / (n(&x) * n(&y))
    }

    #[test]
    fn deterministic_and_case_blind() {
        assert_eq!(embed("A ripe Banana"), embed("a ripe banana"));
        assert_eq!(stem("bananas"), "banana");
        assert_eq!(stem("glass"), "glass");
        assert_eq!(stem("bus"), "bus");
        assert_eq!(embed(""), [0.0; DIM]);
        assert_eq!(embed("the of which"), [0.0; DIM], "function words carry nothing");
        // Pinned so that a change of hashing (which would change every demo build) is noticed.
        let v = embed("banana");
        let nonzero: Vec<usize> = (0..DIM).filter(|&i| v[i] != 0.0).collect();
        assert!((5..=8).contains(&nonzero.len()), "{nonzero:?}");
        assert_eq!(fnv1a(b"banana", 0), 0xb4d3_b6b1_c372_c890, "FNV-1a of banana (as Python computes it)");
    }

    #[test]
    fn a_caption_about_a_class_is_closer_to_its_query_than_to_others() {
        let banana = "banana which is elongated crescent-shaped yellow fruit with soft sweet flesh";
        let volcano = "volcano which is a mountain formed by volcanic material";
        let caption = "Fresh bananas on a wooden table, yellow and ripe";
        assert!(cosine(caption, banana) > cosine(caption, volcano) + 0.15);
        let caption = "Erupting volcano at night, lava flowing down the mountain";
        assert!(cosine(caption, volcano) > cosine(caption, banana) + 0.15);
        assert!((cosine(banana, banana) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn encodes_a_batch_row_by_row() {
        let mut e = ToyHash::load(&TextLoadRequest { config_path: "".into(), threads: 0 }).unwrap();
        let out = e.encode(&["banana", "", "volcano"]).unwrap();
        assert_eq!(out.len(), 3 * DIM);
        assert_eq!(&out[..DIM], &embed("banana")[..]);
        assert_eq!(&out[2 * DIM..], &embed("volcano")[..]);
    }
}
