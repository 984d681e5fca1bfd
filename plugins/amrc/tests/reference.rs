//! Reference-compatible AMRC: files written byte by byte in the reference layout, imported,
//! and run against the reference equations computed here by hand.

use mnnn_amrc::{Amrc, import};
use mnnn_core::reference::{RefDims, build};
use mnnn_core::{Entry, Inputs};
use ndarray::Array2;

const DIMS: RefDims = RefDims {
    input: 2,
    hidden: 2,
    output: 1,
    manifold: None,
};

// W_h stored [out][in]: row h holds the weights into hidden unit h.
const W_H: [[f32; 2]; 2] = [[0.5, -0.3], [0.2, 0.8]];
const W_O: [[f32; 2]; 1] = [[1.1, -0.7]];
const B_H: [f32; 2] = [0.05, -0.1];
const B_O: [f32; 1] = [0.02];
const M0: [f32; 2] = [0.3, -0.2];
const P0: [f32; 2] = [0.4, 0.1];
const BETA: f32 = 0.6;
const ALPHA: f32 = 0.25;

fn file() -> Vec<u8> {
    let mut b = Vec::new();
    for v in [2i32, 2, 1] {
        b.extend(v.to_le_bytes());
    }
    for v in [BETA, ALPHA, 0.01] {
        b.extend(v.to_le_bytes());
    }
    b.extend(17i32.to_le_bytes()); // training steps
    let floats: Vec<f32> = W_H
        .iter()
        .flatten()
        .chain(W_O.iter().flatten())
        .chain(&B_H)
        .chain(&B_O)
        .chain(&M0)
        .chain(&P0)
        .copied()
        .collect();
    for v in floats {
        b.extend(v.to_le_bytes());
    }
    b
}

#[test]
fn an_imported_reference_file_runs_the_reference_equations() {
    let bytes = file();
    assert_eq!(
        bytes.len(),
        28 + 4 * (4 + 2 + 6 + 1),
        "the layout's size (544 B at I=4, H=16, O=1)"
    );
    assert_eq!(28 + 4 * (4 * 16 + 16 + 3 * 16 + 1), 544);
    let imported = import(&bytes, &DIMS).unwrap();
    let mut model = build(&Entry::of::<Amrc>(), &imported, &DIMS).unwrap();
    assert!(model.meta().params.contains("compat:\"reference\""));
    let xs = [[1.0f32, -0.5], [0.3, 0.9], [-1.2, 0.4]];
    let x = Array2::from_shape_fn((3, 2), |(t, j)| xs[t][j]);
    let got = model.predict(&Inputs::Real(x)).unwrap();

    // The reference forward (§1.3), in f64: the echo reads p, then p ← s, s ← o.
    let (mut m, mut p, mut s) = (M0.map(f64::from), P0.map(f64::from), [0.0f64; 2]);
    for (t, x) in xs.iter().enumerate() {
        let mut n = [0.0; 2];
        for h in 0..2 {
            let a =
                B_H[h] as f64 + (0..2).map(|i| W_H[h][i] as f64 * x[i] as f64).sum::<f64>() + m[h];
            n[h] = a.tanh();
        }
        for h in 0..2 {
            let o = n[h] + BETA as f64 * p[h];
            p[h] = s[h];
            s[h] = o;
            m[h] = (1.0 - ALPHA as f64) * m[h] + ALPHA as f64 * n[h];
        }
        let y = (B_O[0] as f64 + (0..2).map(|h| W_O[0][h] as f64 * s[h]).sum::<f64>()).tanh();
        assert!(
            (got[[t, 0]] as f64 - y).abs() < 1e-5,
            "step {t}: {} vs {y}",
            got[[t, 0]]
        );
    }
    // and differs from the design (lag-1) function on the same weights
    let design = imported.params.replace("reference", "design");
    let mut d = Entry::of::<Amrc>()
        .create::<f32>(Some(&design), &model.meta().io, 0)
        .unwrap();
    d.set_params(model.params()).unwrap();
    let dy = d
        .predict(&Inputs::Real(Array2::from_shape_fn((3, 2), |(t, j)| {
            xs[t][j]
        })))
        .unwrap();
    assert!((dy[[2, 0]] - got[[2, 0]]).abs() > 1e-3);
}

#[test]
fn wrong_files_are_refused_with_byte_counts() {
    let bytes = file();
    let e = import(&bytes[..bytes.len() - 1], &DIMS)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has 80 bytes, this one has 79 (too short)"),
        "{e}"
    );
    let mut long = bytes.clone();
    long.push(0);
    assert!(
        import(&long, &DIMS)
            .unwrap_err()
            .to_string()
            .contains("this one has 81 (too long)")
    );
    let other = RefDims {
        input: 3,
        hidden: 2,
        output: 1,
        manifold: None,
    };
    let mut b3 = bytes.clone();
    b3.extend([0u8; 8]); // the size a 3-input file would have
    let e = import(&b3, &other).unwrap_err().to_string();
    assert!(e.contains("input size = 2, expected 3"), "{e}");
}
