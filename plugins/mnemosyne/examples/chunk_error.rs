//! How far `ChunkedTTT(b)` is from the sequential recursion: the relative L2 distance of one
//! head's reads, mini-batch (every gradient at the chunk's starting weights) vs true online,
//! for b ∈ {4, 16, 64} at inner learning rates 0.01, 0.1 and 0.5. The README table is this
//! output.
//!
//! Setup: d = 64, T = 1024, ℓ2-normalised random keys and queries, values N(0, 1), constant
//! θ, no momentum, forget gate or surprise gate; the linear memory from W₀ = 0, the TTT
//! memories from N(0, 0.02) weights.
//!
//! ```text
//! cargo run --release -p mnnn-mnemosyne --example chunk_error
//! ```

use mnnn_core::Rng;
use mnnn_mnemosyne::reference::{
    Head, Stream, Weights, fast_shapes, normal, relative_error, unit_rows,
};
use mnnn_mnemosyne::{Memory, Update};
use ndarray::Array1;

fn main() {
    let (d, t) = (64, 1024);
    let mut rng = Rng::new(2026);
    let q = unit_rows(&mut rng, t, d);
    let k = unit_rows(&mut rng, t, d);
    let v = normal(&mut rng, t, d, 1.0);
    println!("| memory | θ | b = 4 | b = 16 | b = 64 |");
    println!("|---|---|---|---|---|");
    for memory in [Memory::Linear, Memory::TttLinear, Memory::Mlp] {
        let shapes = fast_shapes(memory, Update::All, d);
        let ln = (memory != Memory::Linear).then(|| (Array1::ones(d), Array1::zeros(d)));
        let sd = if memory == Memory::Linear { 0.0 } else { 0.02 };
        let phi = Weights {
            w: shapes
                .iter()
                .map(|&(r, c, _)| normal(&mut rng, r, c, sd))
                .collect(),
            b: shapes
                .iter()
                .map(|&(_, c, b)| b.then(|| Array1::zeros(c)))
                .collect(),
        };
        let head = Head {
            memory,
            ln,
            static_w1: None,
            gate: None,
        };
        for theta in [0.01, 0.1, 0.5] {
            let stream = Stream {
                q: q.clone(),
                k: k.clone(),
                v: v.clone(),
                theta: vec![theta; t],
                log_keep: None,
                log_eta: None,
            };
            let (online, _, _) = head.run(&stream, 1, phi.clone(), phi.zeros_like());
            let errs: Vec<String> = [4, 16, 64]
                .iter()
                .map(|&b| {
                    let (chunked, _, _) = head.run(&stream, b, phi.clone(), phi.zeros_like());
                    format!(
                        "{:.2} %",
                        100.0 * relative_error(chunked.view(), online.view())
                    )
                })
                .collect();
            println!("| {} | {theta} | {} |", memory.as_str(), errs.join(" | "));
        }
    }
}
