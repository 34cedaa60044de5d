//! A synthetic LAION-style caption corpus for `bench/laionet_match.sh`: Parquet files with LAION's
//! metadata columns (SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH, LICENSE, NSFW, similarity), captions of
//! about 46 characters on average built from common caption words, punctuation and capitals, with
//! a lemma of the paper's dictionary in about 1.6% of them (LAION-400M's rate: the paper's
//! substring match counts sum to 6.4 M over 400 M captions), drawn in proportion to those counts
//! when the table is given. Deterministic (seeded).
//!
//!     cargo run --release --example synthetic_captions -- OUT_DIR CAPTIONS FILES [COUNTS.tsv] [--jsonl PATH] [--rows-jsonl PATH]
//!
//! `--jsonl PATH` also writes the captions as JSON lines (a string or null each), for
//! `bench/paper_match.py`; `--rows-jsonl PATH` writes each row's SAMPLE_ID, TEXT and NSFW as a
//! JSON object a line, for `bench/laionet_reference.py`.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const WORDS: &[&str] = &[
    "photo",
    "stock",
    "image",
    "vector",
    "illustration",
    "white",
    "black",
    "red",
    "blue",
    "green",
    "yellow",
    "gold",
    "silver",
    "vintage",
    "modern",
    "classic",
    "new",
    "old",
    "beautiful",
    "cute",
    "happy",
    "young",
    "woman",
    "man",
    "girl",
    "boy",
    "kids",
    "family",
    "wedding",
    "dress",
    "shirt",
    "women's",
    "men's",
    "shoes",
    "boots",
    "bag",
    "leather",
    "cotton",
    "wooden",
    "metal",
    "glass",
    "ceramic",
    "home",
    "decor",
    "living",
    "room",
    "kitchen",
    "bedroom",
    "bathroom",
    "garden",
    "outdoor",
    "indoor",
    "wall",
    "art",
    "print",
    "poster",
    "canvas",
    "painting",
    "design",
    "pattern",
    "background",
    "texture",
    "abstract",
    "floral",
    "flowers",
    "tree",
    "forest",
    "mountain",
    "lake",
    "beach",
    "sea",
    "ocean",
    "sky",
    "sunset",
    "sunrise",
    "night",
    "city",
    "street",
    "house",
    "building",
    "view",
    "travel",
    "summer",
    "winter",
    "autumn",
    "spring",
    "christmas",
    "birthday",
    "party",
    "gift",
    "card",
    "set",
    "pack",
    "size",
    "large",
    "small",
    "mini",
    "big",
    "high",
    "quality",
    "free",
    "shipping",
    "sale",
    "best",
    "top",
    "logo",
    "icon",
    "template",
    "book",
    "cover",
    "page",
    "text",
    "font",
    "style",
    "fashion",
    "jewelry",
    "ring",
    "necklace",
    "earrings",
    "watch",
    "phone",
    "case",
    "laptop",
    "desk",
    "chair",
    "sofa",
    "table",
    "lamp",
    "light",
    "window",
    "door",
    "floor",
    "car",
    "truck",
    "bike",
    "road",
    "bridge",
    "river",
    "park",
    "food",
    "cake",
    "recipe",
    "chocolate",
    "coffee",
    "tea",
    "cup",
    "bowl",
    "plate",
    "salad",
    "chicken",
    "pizza",
    "bread",
    "cheese",
    "healthy",
    "fresh",
    "hand",
    "made",
    "handmade",
    "custom",
    "personalized",
    "original",
    "unique",
    "digital",
    "download",
    "printable",
    "black and white",
    "close-up",
    "portrait",
    "people",
    "group",
    "team",
    "business",
    "office",
    "work",
    "school",
    "student",
    "teacher",
    "map",
    "world",
    "USA",
    "London",
    "Paris",
    "New York",
    "2019",
    "2020",
    "3D",
    "HD",
    "4K",
    "&",
    "with",
    "and",
    "the",
    "of",
    "in",
    "on",
    "for",
    "a",
    "an",
    "at",
    "by",
];
const SEPARATORS: &[&str] = &[" ", " ", " ", " ", " ", " ", ", ", " - ", " | ", ": ", " / "];

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let jsonl = match args.iter().position(|a| a == "--jsonl") {
        Some(i) if i + 1 < args.len() => {
            let p = args.remove(i + 1);
            args.remove(i);
            Some(std::io::BufWriter::new(File::create(p)?))
        }
        _ => None,
    };
    let mut jsonl = jsonl;
    let mut rows_jsonl = match args.iter().position(|a| a == "--rows-jsonl") {
        Some(i) if i + 1 < args.len() => {
            let p = args.remove(i + 1);
            args.remove(i);
            Some(std::io::BufWriter::new(File::create(p)?))
        }
        _ => None,
    };
    if args.len() < 4 {
        anyhow::bail!("usage: synthetic_captions OUT_DIR CAPTIONS FILES [COUNTS.tsv]");
    }
    let out = PathBuf::from(&args[1]);
    let total: u64 = args[2].parse()?;
    let files: u64 = args[3].parse()?;
    // Lemmas, weighted by their class's LAION-400M match count when the table is given.
    let dict = shiftbench::data::lexicon::Lemmas::default_paper();
    let mut weight_of = std::collections::HashMap::new();
    if let Some(t) = args.get(4) {
        for line in std::fs::read_to_string(t)?.lines().skip(1) {
            let c: Vec<&str> = line.split('\t').collect();
            if c.len() >= 3 {
                weight_of.insert(c[1].to_string(), c[2].parse::<f64>().unwrap_or(0.0));
            }
        }
    }
    // Caption words that are no lemma themselves, so lemmas come in at the rate set below.
    let vocab: Vec<&str> = WORDS.iter().copied().filter(|w| !dict.entries.iter().any(|(l, _)| l == w)).collect();
    let mut cumulative = Vec::new();
    let mut acc = 0.0;
    for (_, w) in &dict.entries {
        acc += weight_of.get(w).copied().unwrap_or(1.0).max(1.0);
        cumulative.push(acc);
    }
    std::fs::create_dir_all(&out)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("SAMPLE_ID", DataType::Int64, false),
        Field::new("URL", DataType::Utf8, false),
        Field::new("TEXT", DataType::Utf8, true),
        Field::new("HEIGHT", DataType::Int32, true),
        Field::new("WIDTH", DataType::Int32, true),
        Field::new("LICENSE", DataType::Utf8, true),
        Field::new("NSFW", DataType::Utf8, true),
        Field::new("similarity", DataType::Float64, true),
    ]));
    let mut rng = ChaCha8Rng::seed_from_u64(2023);
    let (mut chars, mut with_lemma) = (0u64, 0u64);
    let per_file = total.div_ceil(files);
    let mut id = 0i64;
    for f in 0..files {
        let rows = per_file.min(total - f * per_file);
        let path = out.join(format!("part-{f:05}.parquet"));
        let props =
            WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_size(128 * 1024).build();
        let mut w = ArrowWriter::try_new(File::create(&path)?, schema.clone(), Some(props))?;
        let mut left = rows;
        while left > 0 {
            let n = left.min(64 * 1024) as usize;
            left -= n as u64;
            let (mut ids, mut urls, mut texts, mut hs, mut ws, mut lic, mut nsfw, mut sims) =
                (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
            for _ in 0..n {
                id += 1;
                ids.push(id * 13 + 7);
                urls.push(format!("https://cdn.example{}.com/images/{:x}/{}.jpg", id % 97, id * 2654435761, id));
                let text = if rng.random_bool(0.001) {
                    None
                } else {
                    let words = rng.random_range(4..=10);
                    let mut t = String::new();
                    let lemma_at = if rng.random_bool(0.016) { Some(rng.random_range(0..words)) } else { None };
                    for i in 0..words {
                        if i > 0 {
                            t.push_str(SEPARATORS[rng.random_range(0..SEPARATORS.len())]);
                        }
                        if Some(i) == lemma_at {
                            let x = rng.random::<f64>() * acc;
                            let k = cumulative.partition_point(|c| *c < x).min(dict.entries.len() - 1);
                            t.push_str(&dict.entries[k].0);
                        } else {
                            let word = vocab[rng.random_range(0..vocab.len())];
                            if i == 0 && rng.random_bool(0.5) {
                                let mut c = word.chars();
                                let first = c.next().map(|f| f.to_uppercase().collect::<String>()).unwrap_or_default();
                                t.push_str(&(first + c.as_str()));
                            } else {
                                t.push_str(word);
                            }
                        }
                    }
                    with_lemma += lemma_at.is_some() as u64;
                    chars += t.len() as u64;
                    Some(t)
                };
                if let Some(j) = jsonl.as_mut() {
                    use std::io::Write;
                    writeln!(j, "{}", serde_json::to_string(&text)?)?;
                }
                texts.push(text);
                hs.push(Some(rng.random_range(200..1200)));
                ws.push(Some(rng.random_range(200..1200)));
                lic.push(if rng.random_bool(0.9) { None } else { Some("?".to_string()) });
                let tag = if rng.random_bool(0.95) { "UNLIKELY" } else { "UNSURE" };
                if let Some(j) = rows_jsonl.as_mut() {
                    use std::io::Write;
                    let row = serde_json::json!({"SAMPLE_ID": id * 13 + 7, "TEXT": texts.last().unwrap(), "NSFW": tag});
                    writeln!(j, "{row}")?;
                }
                nsfw.push(Some(tag.to_string()));
                sims.push(Some(0.28 + rng.random::<f64>() * 0.2));
            }
            let cols: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(urls)),
                Arc::new(StringArray::from(texts)),
                Arc::new(Int32Array::from(hs)),
                Arc::new(Int32Array::from(ws)),
                Arc::new(StringArray::from(lic)),
                Arc::new(StringArray::from(nsfw)),
                Arc::new(Float64Array::from(sims)),
            ];
            w.write(&RecordBatch::try_new(schema.clone(), cols)?)?;
        }
        w.close()?;
    }
    eprintln!(
        "{total} captions in {files} files under {}: {:.1} characters on average, {:.2}% with a lemma inserted",
        out.display(),
        chars as f64 / total as f64,
        100.0 * with_lemma as f64 / total as f64
    );
    Ok(())
}
