//! A per-test directory under the system temp dir, removed on drop: the one copy that the
//! end-to-end test files include with `#[path = "common/tempdir.rs"] mod tempdir;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `<temp>/gradpath-<test binary>-<pid>-<test>`, emptied first.
    pub fn new(test: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "gradpath-{}-{}-{test}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// [`TempDir::join`] as a string, for command-line arguments.
    pub fn file(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The names of the entries directly inside, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
