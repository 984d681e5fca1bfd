//! Reading CSV data as a stream: MB/s of [`CsvRows`] (parse and check every value) and of
//! [`load_csv`] (the same, collected into sequences), on a generated file of three numeric
//! columns and an id column, from the page cache.
//!
//! Run with `cargo bench -p mnnn-core --bench csv`; divan prints the throughput in bytes/s.

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use mnnn_core::csvdata::{CsvRows, load_csv};
use std::path::PathBuf;
use std::sync::OnceLock;

fn main() {
    divan::main();
}

/// Rows of the benchmark file (about 16 MB).
const ROWS: usize = 400_000;

/// The file, written once: `id,t,x,y` with x and y pseudo-random decimals.
fn file() -> &'static (tempfile::TempDir, PathBuf, u64) {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf, u64)> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bench.csv");
        let mut s = String::from("id,t,x,y\n");
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for t in 0..ROWS {
            s.push_str(&format!("s{},{t},{:.6},{:.6}\n", t / 1000, next(), next()));
        }
        std::fs::write(&path, &s).expect("write");
        let len = s.len() as u64;
        (dir, path, len)
    })
}

fn names(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// Every row through [`CsvRows`], three columns in f32, sequences split by id.
#[divan::bench(sample_count = 10)]
fn stream_rows(bencher: Bencher) {
    let (_, path, len) = file();
    let cols = names(&["t", "x", "y"]);
    bencher.counter(BytesCount::new(*len)).bench(|| {
        let mut rows = CsvRows::<f32>::open(path, &cols, Some("id")).expect("opens");
        let mut row = [0.0f32; 3];
        let mut sum = 0.0;
        while let Some(_info) = rows.next_into(&mut row).expect("reads") {
            sum += row[2];
        }
        black_box(sum)
    });
}

/// The whole file as a data set (inputs `t, x`, target `y`, a sequence per id).
#[divan::bench(sample_count = 10)]
fn load_dataset(bencher: Bencher) {
    let (_, path, len) = file();
    let (i, t) = (names(&["t", "x"]), names(&["y"]));
    bencher
        .counter(BytesCount::new(*len))
        .bench(|| black_box(load_csv::<f32>(path, &i, &t, Some("id")).expect("loads")));
}
