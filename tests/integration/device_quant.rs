//! Exports with the device codec path (pareto-eval's candle implementation, the one a GPU runs),
//! here on the CPU: every output file must equal the CPU codecs' export byte for byte, and the
//! report must say which tensors ran on the device.

use std::sync::Arc;

use pareto_core::export::ExportFormat;
use pareto_core::job::JobContext;
use pareto_core::{CompressOptions, Model, Recipe, compress};
use pareto_eval::candle_core::Device;
use pareto_eval::device_quant::DeviceQuantizer;

use crate::common::*;

fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn device_codec_exports_equal_cpu_exports_byte_for_byte() {
    let model = Model::open(stories()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // stories260K rows are 64 or 172 wide: group 32 fits most of its weights (172 falls back).
    let int4_g32_asym = "name = \"int4-g32-asym\"\n[default.quantize]\nformat = \"int4_g32_asym\"\n";
    let cases = [
        ("w8", ExportFormat::Safetensors),
        ("w4-g32", ExportFormat::CompressedTensors),
        (int4_g32_asym, ExportFormat::Safetensors),
        ("w8", ExportFormat::Gptq),
        ("fp8", ExportFormat::CompressedTensors),
        ("gguf-q8_0", ExportFormat::Gguf),
        ("gguf-q4_0", ExportFormat::Gguf),
    ];
    for (preset, format) in cases {
        let recipe = if preset.contains('=') { Recipe::from_toml(preset, "test") } else { Recipe::load(preset) };
        let plan = recipe.unwrap().resolve(&model).unwrap();
        let preset = plan.recipe.name.clone();
        let cpu_dir = tmp.path().join(format!("{preset}-{format:?}-cpu"));
        let dev_dir = tmp.path().join(format!("{preset}-{format:?}-dev"));
        let cpu = compress(&model, &plan, &CompressOptions::new(&cpu_dir).with_format(format), &JobContext::silent())
            .unwrap();
        let mut opts = CompressOptions::new(&dev_dir).with_format(format);
        opts.accelerator = Some(Arc::new(DeviceQuantizer::on(Device::Cpu, "cpu-candle")));
        let dev = compress(&model, &plan, &opts, &JobContext::silent()).unwrap();
        assert_eq!(cpu.device, "cpu");
        assert_eq!(dev.device, "cpu-candle");
        assert!(dev.device_tensors > 0, "{preset}: nothing ran on the device path");
        assert_eq!(cpu.content_hash, dev.content_hash, "{preset} {format:?}: outputs differ");
        assert!(files(&cpu_dir) == files(&dev_dir), "{preset} {format:?}: files differ");
    }
}
