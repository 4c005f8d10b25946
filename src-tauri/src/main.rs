// Hides the console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(text) = pareto_app::info_request(&args) {
        println!("{text}");
        return Ok(());
    }
    pareto_app::run()
}
