//! `cpu | cuda:N | metal`: parsing and opening a candle device, with a clear error (never a panic)
//! when the backend is not compiled in or the device is absent.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// A device as the user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "ordinal")]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
    Metal,
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => write!(f, "metal"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| EvalError::Device { requested: s.to_string(), reason: reason.to_string() };
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(Self::Cpu),
            "metal" => Ok(Self::Metal),
            "cuda" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map(Self::Cuda)
                    .map_err(|_| bad("expected `cuda:N` with N a GPU ordinal (0, 1, ...)")),
                None => Err(bad("expected `cpu`, `cuda:N` or `metal`")),
            },
        }
    }
}

impl DeviceSpec {
    /// Whether this build of pareto carries the backend for this device.
    pub fn compiled_in(&self) -> bool {
        match self {
            Self::Cpu => true,
            Self::Cuda(_) => cfg!(feature = "cuda"),
            Self::Metal => cfg!(feature = "metal"),
        }
    }

    /// Opens the candle device. Errors when the backend is not compiled in or the device is absent.
    pub fn open(&self) -> Result<Device> {
        let requested = self.to_string();
        if !self.compiled_in() {
            let feature = match self {
                Self::Cuda(_) => "cuda",
                _ => "metal",
            };
            return Err(EvalError::Device {
                requested,
                reason: format!("this build has no {feature} support; rebuild with `--features {feature}`"),
            });
        }
        let opened = match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => Device::new_cuda(*n),
            Self::Metal => Device::new_metal(0),
        };
        opened.map_err(|e| EvalError::Device { requested, reason: format!("not available on this machine: {e}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!("cpu".parse::<DeviceSpec>().ok(), Some(DeviceSpec::Cpu));
        assert_eq!("CUDA:1".parse::<DeviceSpec>().ok(), Some(DeviceSpec::Cuda(1)));
        assert_eq!("cuda".parse::<DeviceSpec>().ok(), Some(DeviceSpec::Cuda(0)));
        assert_eq!("metal".parse::<DeviceSpec>().ok(), Some(DeviceSpec::Metal));
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
    }

    #[test]
    fn rejects_garbage_with_the_expected_forms() {
        let err = "gpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("`gpu`") && err.contains("cuda:N"), "{err}");
        let err = "cuda:x".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("ordinal"), "{err}");
    }

    #[test]
    fn cpu_always_opens() {
        assert!(DeviceSpec::Cpu.open().is_ok_and(|d| d.is_cpu()));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        let err = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[cfg(not(feature = "metal"))]
    #[test]
    fn metal_without_the_feature_is_a_clear_error() {
        let err = DeviceSpec::Metal.open().unwrap_err().to_string();
        assert!(err.contains("--features metal"), "{err}");
    }
}
