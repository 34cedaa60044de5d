//! A model's preprocessing spec in plain types: how it crosses the worker pipe and how a result
//! file records it. The interface's enums become their lowercase names
//! (`Interpolation::as_str`) and are read back with their `parse`, the one spelling everywhere.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use shiftbench_plugin::{ChannelOrder, Interpolation, Layout, PreprocessSpec};

/// How a model's input is prepared, as its card says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessInfo {
    pub resize: u32,
    pub crop: u32,
    pub interpolation: String,
    pub channel_order: String,
    pub layout: String,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl PreprocessInfo {
    pub fn of(p: &PreprocessSpec) -> PreprocessInfo {
        PreprocessInfo {
            resize: p.resize,
            crop: p.crop,
            interpolation: p.interpolation.as_str().into(),
            channel_order: p.channel_order.as_str().into(),
            layout: p.layout.as_str().into(),
            scale: p.scale,
            mean: p.mean,
            std: p.std,
        }
    }

    /// The spec again, or which name is unknown.
    pub fn spec(&self) -> Result<PreprocessSpec> {
        let bad = |what: &str, v: &str| anyhow!("unknown {what} {v:?}");
        Ok(PreprocessSpec {
            resize: self.resize,
            crop: self.crop,
            interpolation: Interpolation::parse(&self.interpolation)
                .ok_or_else(|| bad("interpolation", &self.interpolation))?,
            channel_order: ChannelOrder::parse(&self.channel_order)
                .ok_or_else(|| bad("channel order", &self.channel_order))?,
            layout: Layout::parse(&self.layout).ok_or_else(|| bad("layout", &self.layout))?,
            scale: self.scale,
            mean: self.mean,
            std: self.std,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_unknown_names_are_refused() {
        let s = PreprocessSpec { layout: Layout::Nhwc, channel_order: ChannelOrder::Bgr, ..PreprocessSpec::IMAGENET };
        let info = PreprocessInfo::of(&s);
        assert_eq!(
            (info.interpolation.as_str(), info.channel_order.as_str(), info.layout.as_str()),
            ("bilinear", "bgr", "nhwc")
        );
        assert_eq!(info.spec().unwrap(), s);
        let bad = PreprocessInfo { layout: "Nchw".into(), ..info };
        assert!(bad.spec().unwrap_err().to_string().contains("unknown layout \"Nchw\""));
    }
}
