//! Every primitive's vector–Jacobian product against central differences in f64.

use super::*;
use mnnn_core::Rng;
use mnnn_core::buf::mat;
use mnnn_core::gradcheck::numeric_gradient;

type Build = dyn Fn(&mut Tape<f64>, &[Var]) -> Var;

fn random(rng: &mut Rng, r: usize, c: usize) -> Array2<f64> {
    Array2::from_shape_fn((r, c), |_| rng.normal())
}

/// Checks `build` at `inputs` with a random linear functional of its output.
fn check(name: &str, inputs: Vec<Array2<f64>>, build: &Build) {
    let mut rng = Rng::new(7);
    let run = |xs: &[Array2<f64>]| {
        let mut t = Tape::new();
        let vars: Vec<Var> = xs.iter().map(|x| t.leaf(x.clone())).collect();
        let out = build(&mut t, &vars);
        (t, vars, out)
    };
    let (t, vars, out) = run(&inputs);
    let w = random(&mut rng, t.dim(out).0, t.dim(out).1);
    let g = t.backward(&[(out, w.view().insert_axis(Axis(0)))]);
    let loss = |xs: &[Array2<f64>]| {
        let (t, _, o) = run(xs);
        (&t.value(o) * &w).sum()
    };
    for (k, v) in vars.iter().enumerate() {
        let ana = g
            .get(*v)
            .map(|g| g.to_owned())
            .unwrap_or_else(|| Array2::zeros(inputs[k].dim()));
        let (rows, cols) = inputs[k].dim();
        let mut x = inputs[k].as_slice().expect("standard layout").to_vec();
        let nums = numeric_gradient(&mut x, 1e-6, &mut |x| {
            let mut xs = inputs.clone();
            xs[k] = mat(x, rows, cols).to_owned();
            loss(&xs)
        });
        for (idx, &num) in nums.iter().enumerate() {
            let (r, c) = (idx / cols, idx % cols);
            let err = (num - ana[(r, c)]).abs() / (1.0 + num.abs());
            assert!(
                err < 1e-6,
                "{name}: input {k} [{r},{c}]: analytic {} numeric {num}",
                ana[(r, c)]
            );
        }
    }
}

#[test]
fn products_and_broadcasts() {
    let mut r = Rng::new(1);
    let (a, b) = (random(&mut r, 3, 4), random(&mut r, 4, 2));
    check("nn", vec![a.clone(), b], &|t, v| {
        t.matmul(v[0], v[1], Trans::NN)
    });
    let b2 = random(&mut r, 3, 5);
    check("tn", vec![a.clone(), b2], &|t, v| {
        t.matmul(v[0], v[1], Trans::TN)
    });
    let b3 = random(&mut r, 5, 4);
    check("nt", vec![a.clone(), b3], &|t, v| {
        t.matmul(v[0], v[1], Trans::NT)
    });
    let (row, col, same) = (
        random(&mut r, 1, 4),
        random(&mut r, 3, 1),
        random(&mut r, 3, 4),
    );
    check("add", vec![a.clone(), same.clone()], &|t, v| {
        t.add(v[0], v[1])
    });
    check("sub", vec![a.clone(), same.clone()], &|t, v| {
        t.sub(v[0], v[1])
    });
    check("mul", vec![a.clone(), same], &|t, v| t.mul(v[0], v[1]));
    check("add_row", vec![a.clone(), row.clone()], &|t, v| {
        t.add_row(v[0], v[1])
    });
    check("mul_row", vec![a.clone(), row], &|t, v| {
        t.mul_row(v[0], v[1])
    });
    check("add_col", vec![a.clone(), col.clone()], &|t, v| {
        t.add_col(v[0], v[1])
    });
    check("mul_col", vec![a.clone(), col], &|t, v| {
        t.mul_col(v[0], v[1])
    });
    check("scale", vec![a.clone()], &|t, v| t.scale(v[0], -1.7));
    check("offset", vec![a.clone()], &|t, v| t.offset(v[0], 0.3));
    check("row_sum", vec![a.clone()], &|t, v| t.row_sum(v[0]));
    check("transpose", vec![a.clone()], &|t, v| t.transpose(v[0]));
    check(
        "mul_scalar",
        vec![a.clone(), random(&mut r, 1, 1)],
        &|t, v| t.mul_scalar(v[0], v[1]),
    );
    let sq = random(&mut r, 4, 4);
    check("tril", vec![sq.clone()], &|t, v| t.tril(v[0], false));
    check("tril strict", vec![sq], &|t, v| t.tril(v[0], true));
}

#[test]
fn elementwise_functions() {
    let mut r = Rng::new(2);
    let a = random(&mut r, 3, 4);
    let pos = a.mapv(|x| x.abs() + 0.5);
    for f in [
        Unary::Square,
        Unary::Exp,
        Unary::Sigmoid,
        Unary::Softplus,
        Unary::LogSigmoid,
        Unary::Gelu,
        Unary::GeluPrime,
    ] {
        check(&format!("{f:?}"), vec![a.clone()], &move |t, v| {
            t.map(v[0], f)
        });
    }
    for f in [Unary::Rsqrt(1e-3), Unary::Sqrt(1e-3), Unary::Recip] {
        check(&format!("{f:?}"), vec![pos.clone()], &move |t, v| {
            t.map(v[0], f)
        });
    }
}

#[test]
fn scans_masks_and_rearrangements() {
    let mut r = Rng::new(3);
    let col = random(&mut r, 5, 1).mapv(|x| -0.3 * x.abs());
    check("cumsum", vec![col.clone()], &|t, v| t.cumsum(v[0]));
    check("decay", vec![col], &|t, v| t.decay(v[0]));
    let a = random(&mut r, 3, 4);
    let mask = vec![
        true, false, true, true, //
        true, true, true, true, //
        false, false, true, false,
    ];
    check("softmax", vec![a.clone()], &move |t, v| {
        t.softmax(v[0], mask.clone())
    });
    let b = random(&mut r, 3, 2);
    check("slices", vec![a.clone()], &|t, v| {
        let x = t.rows(v[0], 1, 2);
        t.cols(x, 1, 2)
    });
    check("concat", vec![a.clone(), b.clone()], &|t, v| {
        let c = t.concat_cols(vec![v[0], v[1]]);
        let d = t.rows(c, 0, 2);
        t.concat_rows(vec![c, d])
    });
    check("gather", vec![a.clone()], &|t, v| {
        t.gather_rows(v[0], vec![2, 0, 2])
    });
    let low = random(&mut r, 4, 4).mapv(|x| 0.4 * x);
    let y = random(&mut r, 4, 3);
    check("solve", vec![low, y], &|t, v| {
        t.solve_unit_lower(v[0], v[1])
    });
    check("l2 and rms", vec![a, random(&mut r, 1, 4)], &|t, v| {
        let n = t.l2_normalize(v[0], 1e-6);
        t.rms_norm(n, v[1], 1e-6)
    });
}

#[test]
fn the_solve_inverts_its_matrix() {
    let mut r = Rng::new(4);
    let a = random(&mut r, 5, 5);
    let y = random(&mut r, 5, 2);
    let x = forward_substitute(a.view(), y.view());
    let mut full = a.clone();
    tril_in_place(&mut full.view_mut(), true);
    full += &Array2::eye(5);
    let back = full.dot(&x);
    assert!((&back - &y).iter().all(|e| e.abs() < 1e-12));
    let z = back_substitute_transposed(a.view(), y.view());
    let back = full.t().dot(&z);
    assert!((&back - &y).iter().all(|e| e.abs() < 1e-12));
}

#[test]
fn the_fused_fast_update() {
    let mut r = Rng::new(5);
    let ins = vec![
        random(&mut r, 3, 4),
        random(&mut r, 1, 1),
        random(&mut r, 3, 4),
        random(&mut r, 1, 1),
        random(&mut r, 5, 3),
        random(&mut r, 5, 1),
        random(&mut r, 5, 4),
    ];
    check("fast_update", ins.clone(), &|t, v| {
        t.fast_update(Update {
            w: v[0],
            a: Some(v[1]),
            m: Some((v[2], v[3])),
            x: v[4],
            c: v[5],
            g: v[6],
        })
    });
    check("fast_update bare", ins, &|t, v| {
        t.fast_update(Update {
            w: v[0],
            a: None,
            m: None,
            x: v[4],
            c: v[5],
            g: v[6],
        })
    });
}
