//! Replays every committed corpus file through its fuzz target on stable, so crashes found by
//! fuzzing (committed into `fuzz/corpus/<target>/`) stay regression tests.

use std::fs;
use std::path::Path;

#[test]
fn every_committed_corpus_file_replays_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut total = 0;
    for (name, target) in devp2p_fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus for {name} missing at {}: {e}", dir.display()))
            .map(|e| e.expect("readable dir entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "target {name} has no corpus");
        for f in &files {
            let data = fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "target {name} panicked on {}", f.display());
        }
        total += files.len();
    }
    eprintln!(
        "replayed {total} corpus files through {} targets",
        devp2p_fuzz::TARGETS.len()
    );
}
