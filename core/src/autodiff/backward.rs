//! The reverse sweep: each node's gradient, once complete, is pushed into its operands'.
//! Nodes are visited last to first, and every operand precedes its reader, so a node's
//! gradient is complete when it is reached.

use super::record::{GELU_A, GELU_C};
use super::{Node, Op, Tape, Unary, Var, value};
use crate::buf::{mat, mat_mut};
use crate::{Scalar, Tensors, kernels};

/// Where the gradient of `v` goes: its slice of the gradient arena `lo` (every node before
/// the one being swept), the parameter gradients for a parameter, or nowhere (a value no
/// gradient is asked of, or an input when input gradients are not wanted).
fn dst<'a, S: Scalar>(
    nodes: &[Node<S>],
    lo: &'a mut [S],
    pgrads: &'a mut Tensors<S>,
    v: Var,
    want_inputs: bool,
) -> Option<&'a mut [S]> {
    let n = &nodes[v.at()];
    match n.op {
        _ if !n.needs => None,
        Op::Input if !want_inputs => None,
        Op::Param(i) => Some(pgrads.slice_mut(i)),
        _ => Some(&mut lo[n.off..n.off + n.len()]),
    }
}

/// `g += d`.
fn add_into<S: Scalar>(g: &mut [S], d: &[S]) {
    for (g, &d) in g.iter_mut().zip(d) {
        *g += d;
    }
}

/// `g += d ⊙ b`.
fn add_prod<S: Scalar>(g: &mut [S], d: &[S], b: &[S]) {
    for ((g, &d), &b) in g.iter_mut().zip(d).zip(b) {
        *g += d * b;
    }
}

impl<S: Scalar> Tape<S> {
    /// Pushes the gradients in `g` (the gradient arena, seeded with `∂L/∂` the window's
    /// outputs and end state) back through every node; parameter gradients are added to
    /// `pgrads`.
    pub(super) fn sweep(
        &self,
        params: &Tensors<S>,
        g: &mut [S],
        pgrads: &mut Tensors<S>,
        want_inputs: bool,
    ) {
        let nodes = &self.nodes[..];
        let val = |v: Var| value(nodes, &self.vals, params, v);
        for n in nodes.iter().rev() {
            if !n.needs {
                continue;
            }
            let (lo, hi) = g.split_at_mut(n.off);
            let gout = &hi[..n.len()];
            macro_rules! to {
                ($v:expr) => {
                    dst(nodes, lo, pgrads, $v, want_inputs)
                };
            }
            match n.op {
                Op::Constant | Op::Input | Op::State | Op::Param(_) => {}
                Op::MatMul(a, b) => {
                    self.matmul_vjp(params, gout, (a, b), to!(a), None);
                    self.matmul_vjp(params, gout, (a, b), None, to!(b));
                }
                Op::Linear(x, w, b) => {
                    self.matmul_vjp(params, gout, (x, w), to!(x), None);
                    self.matmul_vjp(params, gout, (x, w), None, to!(w));
                    if let Some(gb) = to!(b) {
                        for row in gout.chunks_exact(n.cols) {
                            add_into(gb, row);
                        }
                    }
                }
                Op::Axpby(alpha, a, beta, b) => {
                    if let Some(ga) = to!(a) {
                        ga.iter_mut().zip(gout).for_each(|(g, &d)| *g += alpha * d);
                    }
                    if let Some(gb) = to!(b) {
                        gb.iter_mut().zip(gout).for_each(|(g, &d)| *g += beta * d);
                    }
                }
                Op::Add(a, b) => {
                    if let Some(ga) = to!(a) {
                        add_into(ga, gout);
                    }
                    if let Some(gb) = to!(b) {
                        add_into(gb, gout);
                    }
                }
                Op::Sub(a, b) => {
                    if let Some(ga) = to!(a) {
                        add_into(ga, gout);
                    }
                    if let Some(gb) = to!(b) {
                        for (g, &d) in gb.iter_mut().zip(gout) {
                            *g -= d;
                        }
                    }
                }
                Op::Mul(a, b) => {
                    if let Some(ga) = to!(a) {
                        add_prod(ga, gout, val(b));
                    }
                    if let Some(gb) = to!(b) {
                        add_prod(gb, gout, val(a));
                    }
                }
                Op::AddRow(a, r) => {
                    if let Some(ga) = to!(a) {
                        add_into(ga, gout);
                    }
                    if let Some(gr) = to!(r) {
                        for row in gout.chunks_exact(n.cols) {
                            add_into(gr, row);
                        }
                    }
                }
                Op::MulRow(a, r) => {
                    if let Some(ga) = to!(a) {
                        for (gr, dr) in ga.chunks_exact_mut(n.cols).zip(gout.chunks_exact(n.cols)) {
                            add_prod(gr, dr, val(r));
                        }
                    }
                    if let Some(gr) = to!(r) {
                        let rows = gout.chunks_exact(n.cols).zip(val(a).chunks_exact(n.cols));
                        for (dr, ar) in rows {
                            add_prod(gr, dr, ar);
                        }
                    }
                }
                Op::Affine(a, scale, _) => {
                    if let Some(ga) = to!(a) {
                        for (g, &d) in ga.iter_mut().zip(gout) {
                            *g += scale * d;
                        }
                    }
                }
                Op::Map(a, f) => {
                    if let Some(ga) = to!(a) {
                        let y = &self.vals[n.off..n.off + n.len()];
                        map_vjp(f, val(a), y, gout, ga);
                    }
                }
                Op::SliceCols(a, start) => {
                    if let Some(ga) = to!(a) {
                        let src = nodes[a.at()].cols;
                        for (gr, dr) in ga.chunks_exact_mut(src).zip(gout.chunks_exact(n.cols)) {
                            add_into(&mut gr[start..start + n.cols], dr);
                        }
                    }
                }
                Op::Concat(a, b) => {
                    let ca = nodes[a.at()].cols;
                    let cb = n.cols - ca;
                    if let Some(ga) = to!(a) {
                        for (gr, dr) in ga.chunks_exact_mut(ca).zip(gout.chunks_exact(n.cols)) {
                            add_into(gr, &dr[..ca]);
                        }
                    }
                    if let Some(gb) = to!(b) {
                        for (gr, dr) in gb.chunks_exact_mut(cb).zip(gout.chunks_exact(n.cols)) {
                            add_into(gr, &dr[ca..]);
                        }
                    }
                }
            }
        }
    }

    /// The VJP of `y = a · b` given `∂L/∂y`: adds into `ga` and `gb` where given (one at a
    /// time, as both may live in the same arena).
    fn matmul_vjp(
        &self,
        params: &Tensors<S>,
        gout: &[S],
        (a, b): (Var, Var),
        ga: Option<&mut [S]>,
        gb: Option<&mut [S]>,
    ) {
        let one = S::one();
        let (na, nb) = (&self.nodes[a.at()], &self.nodes[b.at()]);
        let (m, k, c) = (na.rows, na.cols, nb.cols);
        let go = mat(gout, m, c);
        if let Some(ga) = ga {
            let bv = mat(value(&self.nodes, &self.vals, params, b), k, c);
            kernels::gemm(one, go, bv.t(), one, mat_mut(ga, m, k));
        }
        if let Some(gb) = gb {
            let av = mat(value(&self.nodes, &self.vals, params, a), m, k);
            kernels::gemm(one, av.t(), go, one, mat_mut(gb, k, c));
        }
    }

    /// Adds `d` (row-major, `v`'s shape) to the gradient of `v` in `g`, or to `pgrads` for a
    /// parameter.
    pub(super) fn seed(
        &self,
        g: &mut [S],
        pgrads: &mut Tensors<S>,
        v: Var,
        d: impl Iterator<Item = S>,
    ) {
        if let Some(gv) = dst(&self.nodes, g, pgrads, v, true) {
            for (g, d) in gv.iter_mut().zip(d) {
                *g += d;
            }
        }
    }

    /// The gradient of `v` in `g` (zeros for a value no gradient flows into).
    pub(super) fn grad_of<'g>(&self, g: &'g [S], v: Var) -> Option<&'g [S]> {
        let n = &self.nodes[v.at()];
        match n.op {
            Op::Param(_) => None,
            _ if !n.needs => None,
            _ => Some(&g[n.off..n.off + n.len()]),
        }
    }
}

/// `g += d ⊙ f′(x)`, given `f`'s input `x` and output `y`.
fn map_vjp<S: Scalar>(f: Unary, x: &[S], y: &[S], d: &[S], g: &mut [S]) {
    let one = S::one();
    let it = g.iter_mut().zip(d).zip(x.iter().zip(y));
    match f {
        Unary::Tanh => it.for_each(|((g, &d), (_, &y))| *g += d * (one - y * y)),
        Unary::Sigmoid => it.for_each(|((g, &d), (_, &y))| *g += d * y * (one - y)),
        Unary::Relu => it.for_each(|((g, &d), (&x, _))| {
            if x > S::zero() {
                *g += d;
            }
        }),
        Unary::Gelu => {
            let (c, a) = (S::from_f64(GELU_C), S::from_f64(GELU_A));
            let (half, three) = (S::from_f64(0.5), S::from_f64(3.0));
            it.for_each(|((g, &d), (&u, _))| {
                let t = (c * (u + a * u * u * u)).tanh();
                let dt = (one - t * t) * c * (one + three * a * u * u);
                *g += d * half * ((one + t) + u * dt);
            })
        }
        // softplus′ = σ(x) = e^{min(x,0)} / (1 + e^{−|x|}), without overflow.
        Unary::Softplus => it.for_each(|((g, &d), (&x, _))| {
            *g += d * x.min(S::zero()).exp() / (one + (-x.abs()).exp())
        }),
        Unary::Exp => it.for_each(|((g, &d), (_, &y))| *g += d * y),
        Unary::Square => it.for_each(|((g, &d), (&x, _))| *g += d * (x + x)),
    }
}
