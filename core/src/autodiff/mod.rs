//! Gradients for free: a reverse-mode tape of matrix-level operations over a whole batch.
//!
//! A cell written as a [`TapeCell`] records one step of its forward pass with the operations
//! of [`Rec`] — products with parameter matrices, elementwise sums and products, broadcasts of
//! a bias row, activations, slices and concatenations of columns — on `B × n` matrices that
//! hold every sequence of the batch at once. [`Derived`] turns it into a [`Cell`]: the window
//! is recorded step after step, the state carried between steps is a value on the tape, so
//! the reverse sweep crosses steps (full BPTT) and hands `∂L/∂state` back to the previous
//! window, as [`Cell::backward_window`] requires.
//!
//! Every value lives in one arena (`Vec<S>`), every record in one `Vec` of plain nodes;
//! both are cleared, not freed, between windows, so after the first window recording costs
//! no heap allocation. Parameters are not copied onto the tape: a parameter node reads the
//! cell's [`Tensors`] in place and its gradient is added straight into the gradient set, in
//! the parameters' own layout.
//!
//! A cell that needs more speed hand-writes [`Cell::backward_window`] and keeps its
//! [`TapeCell`] as the derived reference: the conformance suite checks the two against each
//! other (and the derived one is checked against finite differences here).
//!
//! [`Cell`]: crate::Cell
//! [`Cell::backward_window`]: crate::Cell::backward_window

mod backward;
mod derived;
mod record;
#[cfg(test)]
mod tests;

pub use derived::{Derived, TapeCell};
pub use record::Rec;

use crate::{Scalar, Tensors};
use std::sync::Mutex;

/// A value on the tape: a `rows × cols` matrix (rows are the batch's sequences).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(u32);

impl Var {
    fn at(self) -> usize {
        self.0 as usize
    }
}

/// An elementwise function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^{−x})`.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// `x · Φ(x)` in its tanh form, `½ x (1 + tanh(√(2/π)(x + 0.044715 x³)))`.
    Gelu,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// `eˣ`.
    Exp,
    /// `x²`.
    Square,
}

/// What made a node; operands always precede the node that reads them.
#[derive(Clone, Copy, Debug)]
enum Op<S> {
    /// A value given from outside that no gradient is asked of.
    Constant,
    /// One step's inputs; its gradient is the input gradient of that step.
    Input,
    /// One state tensor at the start of the window.
    State,
    /// Parameter tensor `i`, read in place from the parameter set.
    Param(usize),
    /// `a · b`.
    MatMul(Var, Var),
    /// `x · w + 1·b`: a product and a bias row in one value.
    Linear(Var, Var, Var),
    /// `α·a + β·b` for constants `α`, `β`.
    Axpby(S, Var, S, Var),
    /// `a + b`, same shapes.
    Add(Var, Var),
    /// `a − b`, same shapes.
    Sub(Var, Var),
    /// `a ⊙ b`, same shapes.
    Mul(Var, Var),
    /// `a + 1·r`: the row `r` (`1 × n`) added to every row of `a`.
    AddRow(Var, Var),
    /// `a ⊙ 1·r`: every row of `a` times the row `r` (`1 × n`).
    MulRow(Var, Var),
    /// `scale · a + shift`.
    Affine(Var, S, S),
    /// `f(a)` elementwise.
    Map(Var, Unary),
    /// Columns `start..start + cols` of `a`.
    SliceCols(Var, usize),
    /// The columns of `a` then those of `b`.
    Concat(Var, Var),
}

/// One recorded value: how it was made and where it lives.
#[derive(Clone, Copy, Debug)]
struct Node<S> {
    op: Op<S>,
    /// Offset of the value (and of its gradient) in the arenas; unused by a parameter.
    off: usize,
    rows: usize,
    cols: usize,
    /// Whether any gradient flows into it (from a parameter, a state or an input).
    needs: bool,
}

impl<S> Node<S> {
    fn len(&self) -> usize {
        self.rows * self.cols
    }
}

/// The record of one window: its nodes, their values, and which nodes are each step's input
/// and output and each state tensor at the start and the end.
///
/// Reused from window to window: clearing keeps every buffer's capacity. It is what
/// [`Derived`] keeps as its [`Cell::Tape`](crate::Cell::Tape).
#[derive(Debug, Default)]
pub struct Tape<S> {
    nodes: Vec<Node<S>>,
    vals: Vec<S>,
    /// The gradient arena, filled by the backward pass (which only reads the rest of the
    /// tape, as [`Cell::backward_window`](crate::Cell::backward_window) takes it shared).
    grads: Mutex<Vec<S>>,
    params: Vec<Var>,
    inputs: Vec<Var>,
    outputs: Vec<Var>,
    state_start: Vec<Var>,
    state_end: Vec<Var>,
    batch: usize,
}

impl<S: Scalar> Tape<S> {
    /// Forgets the last window, keeping the buffers.
    fn clear(&mut self) {
        self.nodes.clear();
        self.vals.clear();
        self.params.clear();
        self.inputs.clear();
        self.outputs.clear();
        self.state_start.clear();
        self.state_end.clear();
    }

    /// Appends a node of `rows × cols` zeros.
    fn push(&mut self, op: Op<S>, rows: usize, cols: usize, needs: bool) -> Var {
        assert!(
            self.nodes.len() < u32::MAX as usize,
            "tape longer than 2³² nodes"
        );
        let off = self.vals.len();
        if !matches!(op, Op::Param(_)) {
            self.vals.resize(off + rows * cols, S::zero());
        }
        self.nodes.push(Node {
            op,
            off,
            rows,
            cols,
            needs,
        });
        Var(self.nodes.len() as u32 - 1)
    }

    /// The shape of `v`.
    pub fn dim(&self, v: Var) -> (usize, usize) {
        let n = &self.nodes[v.at()];
        (n.rows, n.cols)
    }

    /// How many nodes the last window recorded.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The value of `v` (row-major), reading a parameter from `params`.
    pub fn value<'a>(&'a self, params: &'a Tensors<S>, v: Var) -> &'a [S] {
        value(&self.nodes, &self.vals, params, v)
    }
}

/// The value of `v` in `arena` (or in `params` for a parameter).
fn value<'a, S: Scalar>(
    nodes: &[Node<S>],
    arena: &'a [S],
    params: &'a Tensors<S>,
    v: Var,
) -> &'a [S] {
    let n = &nodes[v.at()];
    match n.op {
        Op::Param(i) => params.slice(i),
        _ => &arena[n.off..n.off + n.len()],
    }
}

/// A parameter tensor as a matrix: `[r, c]` is `r × c`, anything else one row.
fn param_shape(shape: &[usize]) -> (usize, usize) {
    match shape {
        [r, c] => (*r, *c),
        _ => (1, shape.iter().product()),
    }
}
