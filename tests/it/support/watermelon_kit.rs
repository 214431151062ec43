//! The scenarios of `tests/watermelon/`: the real `@nozbe/watermelondb` library and the kit's
//! `sync.js`, run by Node's test runner against a server of the test.

use std::path::PathBuf;
use std::process::Command;

use super::install_node_modules;

/// Node is here and the scenarios' packages are installed (`npm ci`, once).
pub struct WatermelonScenarios {
    dir: PathBuf,
}

impl WatermelonScenarios {
    /// `None` without Node (the scenario is skipped with a notice), unless
    /// `DIEMDANH_REQUIRE_NODE=1`, which makes that a failure.
    pub fn available() -> Option<WatermelonScenarios> {
        if Command::new("node").arg("--version").output().is_err() {
            assert!(
                std::env::var("DIEMDANH_REQUIRE_NODE").as_deref() != Ok("1"),
                "node is not installed and DIEMDANH_REQUIRE_NODE=1"
            );
            eprintln!("node is not installed: skipping the WatermelonDB library test");
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/watermelon");
        install_node_modules(&dir, "@nozbe/watermelondb");
        Some(WatermelonScenarios { dir })
    }

    /// Runs one scenario file; its failure fails the test.
    pub fn run(&self, file: &str, env: &[(&str, String)]) {
        let output = Command::new("node")
            .args(["--test", "--test-reporter=spec", file])
            .current_dir(&self.dir)
            .env(
                "NODE_PATH",
                self.dir.join("node_modules").to_string_lossy().into_owned(),
            )
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .output()
            .expect("run node");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "the WatermelonDB scenario {file} failed ({:?}):\n{stdout}\n{stderr}",
            output.status
        );
    }
}
