//! Test fixture: a small model that misbehaves on purpose, so the tests can check that the
//! harness survives it and says what went wrong. Its model YAML picks the behaviour:
//!
//! ```yaml
//! plugin: misbehave          # this library
//! name: bad-segfault         # the model's name in tables
//! preprocess: {resize: 32, crop: 32}
//! options:
//!   behave: segfault         # see `Behave` below
//!   after: 2                 # behave well for this many batches first (default 0)
//!   sleep_ms: 100            # `slow`: how long each batch takes
//! ```
//!
//! Behaving well, it scores the 10 classes of the example plugin from the mean colour of the
//! image, so its results are deterministic. It has a 4-value embedding (also from the mean), and
//! `embed` misbehaves as `infer` does (batches counted together).
//!
//! It also offers a text encoder ([`MisbehaveText`]), for an `encoder.yaml` such as
//!
//! ```yaml
//! plugin: misbehave
//! behave: segfault           # good, segfault, abort, hang, panic, error, wrong-length, nan, panic-load
//! after: 1                   # behave well for this many calls first (default 0)
//! ```
//!
//! Behaving well, it embeds a text as 4 values from its length and first byte.

use std::time::Duration;

use shiftbench_model_config::ModelConfig;
use shiftbench_plugin::{
    export_plugin, Classifier, LoadRequest, ModelCard, PreprocessSpec, ScoreKind, TextEncoder, TextEncoderInfo,
    TextLoadRequest,
};

/// The example plugin's classes, in output order.
const LABELS: [&str; 10] = [
    "n07747607",
    "n07753592",
    "n07745940",
    "n07720875",
    "n09472597",
    "n04254680",
    "n03938244",
    "n07718472",
    "n07749582",
    "n02782093",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behave {
    /// A well-behaved model.
    Good,
    /// Dereferences a null pointer in `infer` (SIGSEGV).
    Segfault,
    /// Calls `abort()` in `infer` (SIGABRT).
    Abort,
    /// Sleeps forever in `infer`.
    Hang,
    /// Panics in `infer` (caught by the export macro; the model is then unusable).
    Panic,
    /// Segfaults, sleeps forever or panics while loading.
    SegfaultLoad,
    HangLoad,
    PanicLoad,
    /// Returns one score too many.
    WrongLength,
    /// Returns scores for one image more than it was asked for.
    WrongBatch,
    /// Returns NaN (or +inf) for every other image.
    Nan,
    Inf,
    /// A label list with a duplicate, or with a well-formed wnid that is no ImageNet synset.
    DupLabels,
    UnknownWnid,
    /// Sleeps `sleep_ms` in every batch, then behaves.
    Slow,
    /// Prints to stdout in every batch, then behaves (stdout must not corrupt anything).
    Chatty,
    /// Fails every batch with an ordinary error whose text reads like a panic's: the typed
    /// error kind must keep the model going.
    LooksFatal,
}

fn parse_behave(s: &str) -> Option<Behave> {
    use Behave::*;
    Some(match s {
        "good" => Good,
        "segfault" => Segfault,
        "abort" => Abort,
        "hang" => Hang,
        "panic" => Panic,
        "segfault-load" => SegfaultLoad,
        "hang-load" => HangLoad,
        "panic-load" => PanicLoad,
        "wrong-length" => WrongLength,
        "wrong-batch" => WrongBatch,
        "nan" => Nan,
        "inf" => Inf,
        "dup-labels" => DupLabels,
        "unknown-wnid" => UnknownWnid,
        "slow" => Slow,
        "chatty" => Chatty,
        "looks-fatal" => LooksFatal,
        _ => return None,
    })
}

pub struct Misbehave {
    name: String,
    behave: Behave,
    after: u64,
    sleep: Duration,
    preprocess: PreprocessSpec,
    batches: u64,
}

fn segfault() -> ! {
    // SAFETY: none; crashing is the point.
    unsafe { std::ptr::null_mut::<u32>().write_volatile(7) };
    unreachable!()
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

impl Classifier for Misbehave {
    fn load(req: &LoadRequest) -> Result<Self, String> {
        if req.config_path.is_empty() {
            return Err("the misbehave fixture needs a model YAML with options.behave".into());
        }
        let cfg = ModelConfig::load(std::path::Path::new(req.config_path.as_str())).map_err(|e| e.to_string())?;
        let b = cfg.option_str("behave").map_err(|e| e.to_string())?.unwrap_or("good");
        let behave = parse_behave(b).ok_or_else(|| format!("unknown behaviour {b:?}"))?;
        match behave {
            Behave::SegfaultLoad => segfault(),
            Behave::HangLoad => hang(),
            Behave::PanicLoad => panic!("misbehave: panicking in load as asked"),
            _ => {}
        }
        Ok(Misbehave {
            name: cfg.name.clone(),
            behave,
            after: cfg.option_u64("after").map_err(|e| e.to_string())?.unwrap_or(0),
            sleep: Duration::from_millis(cfg.option_u64("sleep_ms").map_err(|e| e.to_string())?.unwrap_or(0)),
            preprocess: cfg.preprocess,
            batches: 0,
        })
    }

    fn card(&self) -> ModelCard {
        let mut labels: Vec<&str> = LABELS.to_vec();
        match self.behave {
            Behave::DupLabels => labels[7] = labels[2],
            Behave::UnknownWnid => labels[4] = "n99999999",
            _ => {}
        }
        ModelCard {
            name: self.name.as_str().into(),
            labels: labels.into_iter().map(Into::into).collect(),
            preprocess: self.preprocess,
            max_batch: 0,
            scores: ScoreKind::Logits,
        }
    }

    fn infer(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let per = self.preprocess.image_len();
        let out: Vec<f32> = input
            .chunks_exact(per)
            .flat_map(|img| {
                let mean = img.iter().sum::<f32>() / per as f32;
                (0..LABELS.len()).map(move |i| -(mean - i as f32 / 10.0).powi(2))
            })
            .collect();
        self.answer(out, batch, LABELS.len())
    }

    /// Four values per image from its mean, misbehaving as `infer` does.
    fn embedding_len(&self) -> usize {
        EMBEDDING_LEN
    }

    fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let per = self.preprocess.image_len();
        let out: Vec<f32> = input
            .chunks_exact(per)
            .flat_map(|img| {
                let mean = img.iter().sum::<f32>() / per as f32;
                [mean, 1.0 - mean, 0.5, (10.0 * mean).sin()]
            })
            .collect();
        self.answer(out, batch, EMBEDDING_LEN)
    }
}

/// Values in the fixture's embedding.
const EMBEDDING_LEN: usize = 4;

impl Misbehave {
    /// `out` (`row` values per image) after this batch's misbehaviour, if it is one.
    fn answer(&mut self, mut out: Vec<f32>, batch: usize, row: usize) -> Result<Vec<f32>, String> {
        self.batches += 1;
        if self.batches <= self.after {
            return Ok(out);
        }
        match self.behave {
            Behave::Segfault => segfault(),
            Behave::Abort => std::process::abort(),
            Behave::Hang => hang(),
            Behave::Panic => panic!("misbehave: panicking in infer as asked"),
            Behave::WrongLength => out.push(0.5),
            Behave::WrongBatch => out.extend_from_within(..row),
            Behave::Nan | Behave::Inf => {
                let v = if self.behave == Behave::Nan { f32::NAN } else { f32::INFINITY };
                for img in (0..batch).step_by(2) {
                    out[img * row + 3] = v;
                }
            }
            Behave::Slow => std::thread::sleep(self.sleep),
            Behave::Chatty => println!("misbehave: chatting on stdout in batch {}", self.batches),
            Behave::LooksFatal => return Err("plugin panicked: no, this is only an error message".into()),
            _ => {}
        }
        Ok(out)
    }
}

/// The fixture's text encoder, misbehaving as its `encoder.yaml` says.
pub struct MisbehaveText {
    behave: String,
    after: u64,
    calls: u64,
}

/// The value of `key:` in a flat YAML file (enough for this fixture).
fn yaml_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(|v| v.trim().to_string()))
}

impl TextEncoder for MisbehaveText {
    fn load(req: &TextLoadRequest) -> Result<Self, String> {
        let text = std::fs::read_to_string(req.config_path.as_str())
            .map_err(|e| format!("the misbehave text encoder needs an encoder.yaml with behave: ({e})"))?;
        let behave = yaml_value(&text, "behave").unwrap_or_else(|| "good".into());
        match behave.as_str() {
            "panic-load" => panic!("misbehave: panicking in load as asked"),
            "segfault-load" => segfault(),
            "good" | "segfault" | "abort" | "hang" | "panic" | "error" | "wrong-length" | "nan" => {}
            other => return Err(format!("unknown behaviour {other:?}")),
        }
        let after = yaml_value(&text, "after").map(|a| a.parse().map_err(|_| format!("after: {a} is not a count")));
        Ok(MisbehaveText { behave, after: after.transpose()?.unwrap_or(0), calls: 0 })
    }

    fn info(&self) -> TextEncoderInfo {
        TextEncoderInfo { name: format!("misbehave-{}", self.behave).into(), dim: 4, max_batch: 0 }
    }

    fn encode(&mut self, texts: &[&str]) -> Result<Vec<f32>, String> {
        let mut out: Vec<f32> = texts
            .iter()
            .flat_map(|t| [t.len() as f32, 1.0, t.bytes().next().unwrap_or(0) as f32 / 255.0, 0.5])
            .collect();
        self.calls += 1;
        if self.calls <= self.after {
            return Ok(out);
        }
        match self.behave.as_str() {
            "segfault" => segfault(),
            "abort" => std::process::abort(),
            "hang" => hang(),
            "panic" => panic!("misbehave: panicking in encode as asked"),
            "error" => return Err(format!("misbehave: refusing {} texts as asked", texts.len())),
            "wrong-length" => out.push(0.5),
            "nan" => out[1] = f32::NAN,
            _ => {}
        }
        Ok(out)
    }
}

export_plugin!(Misbehave, text_encoder = MisbehaveText);
