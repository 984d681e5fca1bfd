//! `SequentialTTT`: one head's memory as a plain token loop in f64, written independently of
//! the tape, with every intermediate weight materialised. It is the reference the chunked
//! forms are tested against (and what the README's chunk-error table measures from).
//!
//! With `chunk = 1` it is the sequential recursion; with `chunk = b` it takes each token's
//! gradient at the weights its chunk started from (the function `ChunkedTTT(b)` computes).

use crate::memory::{LN_EPS, SURPRISE_EPS};
use crate::params::{Memory, Update};
use crate::shapes::fast_layers;
use mnnn_core::Rng;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

/// One head's memory network and its slow parameters.
#[derive(Clone, Debug)]
pub struct Head {
    /// The inner network.
    pub memory: Memory,
    /// LayerNorm gain and shift (TTT variants).
    pub ln: Option<(Array1<f64>, Array1<f64>)>,
    /// The MLP's static first layer (`update: "last_layer"`).
    pub static_w1: Option<(Array2<f64>, Array1<f64>)>,
    /// Surprise threshold and pre-softplus temperature.
    pub gate: Option<(f64, f64)>,
}

/// Fast weights: per fast layer a weight and an optional bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// Weights.
    pub w: Vec<Array2<f64>>,
    /// Biases.
    pub b: Vec<Option<Array1<f64>>>,
}

impl Weights {
    /// Zeros shaped like `self`.
    pub fn zeros_like(&self) -> Weights {
        Weights {
            w: self.w.iter().map(|w| Array2::zeros(w.dim())).collect(),
            b: self
                .b
                .iter()
                .map(|b| b.as_ref().map(|b| Array1::zeros(b.len())))
                .collect(),
        }
    }

    fn combine(&mut self, keep: f64, other: &Weights, k: f64) {
        for (a, b) in self.w.iter_mut().zip(&other.w) {
            a.mapv_inplace(|v| v * keep);
            a.scaled_add(k, b);
        }
        for (a, b) in self.b.iter_mut().zip(&other.b) {
            if let (Some(a), Some(b)) = (a, b) {
                a.mapv_inplace(|v| v * keep);
                a.scaled_add(k, b);
            }
        }
    }
}

/// Per-token inputs of one head.
#[derive(Clone, Debug)]
pub struct Stream {
    /// Queries, keys, values (`T × d`; queries and keys of unit norm).
    pub q: Array2<f64>,
    /// Keys.
    pub k: Array2<f64>,
    /// Values.
    pub v: Array2<f64>,
    /// Inner learning rates.
    pub theta: Vec<f64>,
    /// `log(1 − α)` per token (forget gate), if any.
    pub log_keep: Option<Vec<f64>>,
    /// `log η` per token (momentum), if any.
    pub log_eta: Option<Vec<f64>>,
}

const C: f64 = 0.797_884_560_802_865_4;
const A: f64 = 0.044_715;

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + (C * (x + A * x * x * x)).tanh())
}

fn gelu_prime(x: f64) -> f64 {
    let th = (C * (x + A * x * x * x)).tanh();
    0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * C * (1.0 + 3.0 * A * x * x)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// LayerNorm of a row: `(x̂, 1/σ)`.
fn normalise(z: ArrayView1<f64>) -> (Array1<f64>, f64) {
    let n = z.len() as f64;
    let mu = z.sum() / n;
    let var = z.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n;
    let r = 1.0 / (var + LN_EPS).sqrt();
    (z.mapv(|v| (v - mu) * r), r)
}

fn affine(x: ArrayView1<f64>, w: &Array2<f64>, b: Option<&Array1<f64>>) -> Array1<f64> {
    let y = x.dot(w);
    match b {
        Some(b) => y + b,
        None => y,
    }
}

impl Head {
    /// The memory's prediction for input row `x` under `phi`.
    pub fn read(&self, phi: &Weights, x: ArrayView1<f64>) -> Array1<f64> {
        let last = phi.w.len() - 1;
        let (w1, b1) = match &self.static_w1 {
            Some((w, b)) => (w, Some(b)),
            None => (&phi.w[0], phi.b[0].as_ref()),
        };
        match self.memory {
            Memory::Linear => x.dot(&phi.w[0]),
            Memory::TttLinear => {
                let (g, b) = self.ln.as_ref().expect("ln");
                let (xh, _) = normalise(affine(x, &phi.w[0], phi.b[0].as_ref()).view());
                &x + &(xh * g + b)
            }
            Memory::Mlp => {
                let (g, b) = self.ln.as_ref().expect("ln");
                let h = affine(x, w1, b1).mapv(gelu);
                let (xh, _) =
                    normalise(affine(h.view(), &phi.w[last], phi.b[last].as_ref()).view());
                &x + &(xh * g + b)
            }
        }
    }

    /// `(∇_φ ℓ(φ; k, v), e, τ)` for one token, with `ℓ = ½‖prediction − τ‖²`.
    pub fn gradient(
        &self,
        phi: &Weights,
        k: ArrayView1<f64>,
        v: ArrayView1<f64>,
    ) -> (Weights, Array1<f64>, Array1<f64>) {
        let outer = |a: &Array1<f64>, b: &Array1<f64>| {
            a.view()
                .insert_axis(Axis(1))
                .dot(&b.view().insert_axis(Axis(0)))
        };
        // ∂ℓ/∂z through LayerNorm: (γ ⊙ e − mean(γ ⊙ e) − x̂ mean(γ ⊙ e ⊙ x̂)) / σ.
        let ln_back = |z: Array1<f64>, tau: &Array1<f64>| {
            let (g, b) = self.ln.as_ref().expect("ln");
            let (xh, r) = normalise(z.view());
            let e = &xh * g + b - tau;
            let gh = &e * g;
            let n = gh.len() as f64;
            let m1 = gh.sum() / n;
            let m2 = (&gh * &xh).sum() / n;
            let dz = (&gh - m1 - &xh * m2) * r;
            (dz, e)
        };
        let kk = k.to_owned();
        match self.memory {
            Memory::Linear => {
                let e = k.dot(&phi.w[0]) - v;
                (
                    Weights {
                        w: vec![outer(&kk, &e)],
                        b: vec![None],
                    },
                    e,
                    v.to_owned(),
                )
            }
            Memory::TttLinear => {
                let tau = &v - &k;
                let (dz, e) = ln_back(affine(k, &phi.w[0], phi.b[0].as_ref()), &tau);
                (
                    Weights {
                        w: vec![outer(&kk, &dz)],
                        b: vec![Some(dz)],
                    },
                    e,
                    tau,
                )
            }
            Memory::Mlp => {
                let tau = &v - &k;
                let last = phi.w.len() - 1;
                let (w1, b1) = match &self.static_w1 {
                    Some((w, b)) => (w, Some(b)),
                    None => (&phi.w[0], phi.b[0].as_ref()),
                };
                let z1 = affine(k, w1, b1);
                let h = z1.mapv(gelu);
                let (g2, e) = ln_back(affine(h.view(), &phi.w[last], phi.b[last].as_ref()), &tau);
                let second = (outer(&h, &g2), Some(g2.clone()));
                if self.static_w1.is_some() {
                    (
                        Weights {
                            w: vec![second.0],
                            b: vec![second.1],
                        },
                        e,
                        tau,
                    )
                } else {
                    let g1 = phi.w[last].dot(&g2) * z1.mapv(gelu_prime);
                    (
                        Weights {
                            w: vec![outer(&kk, &g1), second.0],
                            b: vec![Some(g1), second.1],
                        },
                        e,
                        tau,
                    )
                }
            }
        }
    }

    /// The surprise gate's value for a token with error `e` and target `tau` (1 without
    /// a gate), and the normalised surprise itself.
    pub fn gate(&self, e: &Array1<f64>, tau: &Array1<f64>) -> (f64, f64) {
        let d = e.len() as f64;
        let s = (e.dot(e) + 1e-12).sqrt() / (tau.dot(tau) + SURPRISE_EPS * d).sqrt();
        let g = match self.gate {
            Some((thr, temp)) => sigmoid((s - thr) / softplus(temp)),
            None => 1.0,
        };
        (g, s)
    }

    /// Runs the token loop from `phi` (and momentum `s`) with gradients at chunk starts;
    /// returns the reads (`T × d`) and the final weights and momentum.
    pub fn run(
        &self,
        stream: &Stream,
        chunk: usize,
        mut phi: Weights,
        mut s: Weights,
    ) -> (Array2<f64>, Weights, Weights) {
        let t_len = stream.q.nrows();
        let mut out = Array2::zeros(stream.q.dim());
        let mut snap = phi.clone();
        for t in 0..t_len {
            if t % chunk == 0 {
                snap = phi.clone();
            }
            let (u, e, tau) = self.gradient(&snap, stream.k.row(t), stream.v.row(t));
            let (g, _) = self.gate(&e, &tau);
            let eta = stream.log_eta.as_ref().map_or(0.0, |l| l[t].exp());
            let keep = stream.log_keep.as_ref().map_or(1.0, |l| (g * l[t]).exp());
            s.combine(eta, &u, -stream.theta[t] * g);
            phi.combine(keep, &s, 1.0);
            out.row_mut(t).assign(&self.read(&phi, stream.q.row(t)));
        }
        (out, phi, s)
    }
}

/// `(rows, cols, bias)` of each fast layer of `memory` at head width `d`, as the layer sizes
/// its state.
pub fn fast_shapes(memory: Memory, update: Update, d: usize) -> Vec<(usize, usize, bool)> {
    fast_layers(memory, update, d)
        .iter()
        .map(|m| (m.rows, m.cols, m.bias))
        .collect()
}

/// `‖a − b‖ / ‖b‖`.
pub fn relative_error(a: ArrayView2<f64>, b: ArrayView2<f64>) -> f64 {
    let num = (&a - &b).mapv(|v| v * v).sum().sqrt();
    num / b.mapv(|v| v * v).sum().sqrt().max(1e-300)
}

/// A `rows × cols` matrix of normals with standard deviation `sd`.
pub fn normal(rng: &mut Rng, rows: usize, cols: usize, sd: f64) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |_| sd * rng.normal())
}

/// Standard-normal rows scaled to unit ℓ2 norm: random keys and queries as the heads see them.
pub fn unit_rows(rng: &mut Rng, rows: usize, cols: usize) -> Array2<f64> {
    let mut a = normal(rng, rows, cols, 1.0);
    for mut row in a.rows_mut() {
        let n = row.dot(&row).sqrt();
        row.mapv_inplace(|v| v / n);
    }
    a
}
