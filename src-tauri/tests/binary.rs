//! The built studio binary: `--version` and `--help` answer without a display (before any window
//! opens), as desktop tools do. Also makes `cargo test` build the binary the WebDriver tests drive,
//! with the same dependency features as every other test, so no crate is compiled twice.

use std::process::Command;

fn app(arg: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pareto-app"))
        .arg(arg)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run pareto-app");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn version_and_help_work_headless() {
    let (ok, text) = app("--version");
    assert!(ok, "{text}");
    assert_eq!(text.trim(), format!("pareto-app {}", env!("CARGO_PKG_VERSION")));
    for flag in ["--help", "-h"] {
        let (ok, text) = app(flag);
        assert!(ok && text.contains("--open <model>") && text.contains("--version"), "{flag}: {text}");
    }
}
