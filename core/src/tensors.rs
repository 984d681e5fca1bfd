//! Named tensor sets: parameters, gradients, optimizer moments and memory state all use one
//! layout-plus-buffer representation, so persistence, freezing, diagnostics and the
//! conformance suite work on every entry without knowing it.

use crate::{Error, Result, Scalar};
use ndarray::{ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, IxDyn};
use std::sync::Arc;

/// One named tensor inside a [`Layout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name, unique within its layout (e.g. `w_h`).
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Offset of the first element in the flat buffer.
    pub offset: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        // Saturating: shapes can come from user-sized configs, and callers compare totals
        // against a cap before allocating anything.
        self.shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element range in the flat buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset.saturating_add(self.len())
    }
}

/// The ordered names and shapes of a tensor set, and where each lives in one flat buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    entries: Vec<TensorInfo>,
    total: usize,
}

impl Layout {
    /// An empty layout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a tensor and returns its index.
    ///
    /// # Panics
    /// If `name` is already present: layouts are written by cell authors, not users, and a
    /// duplicate is a programming error.
    pub fn push(&mut self, name: impl Into<String>, shape: &[usize]) -> usize {
        let name = name.into();
        assert!(
            self.index_of(&name).is_none(),
            "duplicate tensor name {name}"
        );
        let info = TensorInfo {
            name,
            shape: shape.to_vec(),
            offset: self.total,
        };
        self.total = self.total.saturating_add(info.len());
        self.entries.push(info);
        self.entries.len() - 1
    }

    /// Builder form of [`Layout::push`].
    pub fn with(mut self, name: &str, shape: &[usize]) -> Self {
        self.push(name, shape);
        self
    }

    /// The tensors, in order.
    pub fn entries(&self) -> &[TensorInfo] {
        &self.entries
    }

    /// Total number of elements.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Index of the tensor called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.name == name)
    }

    /// The same tensors with a leading batch dimension `b` (each tensor one `b × …` block).
    pub fn batched(&self, b: usize) -> Layout {
        let mut out = Layout::new();
        for e in &self.entries {
            let mut shape = vec![b];
            shape.extend_from_slice(&e.shape);
            out.push(e.name.clone(), &shape);
        }
        out
    }
}

/// A tensor set: a [`Layout`] and the flat buffer it describes.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensors<S> {
    layout: Arc<Layout>,
    data: Vec<S>,
}

impl<S: Scalar> Tensors<S> {
    /// All zeros.
    pub fn zeros(layout: Layout) -> Self {
        let n = layout.total();
        Tensors {
            layout: Arc::new(layout),
            data: vec![S::zero(); n],
        }
    }

    /// All zeros, sharing `layout`.
    pub fn zeros_like(other: &Tensors<S>) -> Self {
        Tensors {
            layout: other.layout.clone(),
            data: vec![S::zero(); other.data.len()],
        }
    }

    /// From a layout and a buffer of exactly `layout.total()` elements.
    pub fn from_vec(layout: Layout, data: Vec<S>) -> Result<Self> {
        if data.len() != layout.total() {
            return Err(Error::Tensors(format!(
                "buffer has {} elements, layout needs {}",
                data.len(),
                layout.total()
            )));
        }
        Ok(Tensors {
            layout: Arc::new(layout),
            data,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The flat buffer.
    pub fn data(&self) -> &[S] {
        &self.data
    }

    /// The flat buffer, mutable.
    pub fn data_mut(&mut self) -> &mut [S] {
        &mut self.data
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: S) {
        self.data.fill(v);
    }

    /// The elements of tensor `i`.
    #[inline]
    pub fn slice(&self, i: usize) -> &[S] {
        &self.data[self.layout.entries[i].range()]
    }

    /// The elements of tensor `i`, mutable.
    #[inline]
    pub fn slice_mut(&mut self, i: usize) -> &mut [S] {
        let r = self.layout.entries[i].range();
        &mut self.data[r]
    }

    /// Tensor `i` as an n-dimensional view.
    pub fn view(&self, i: usize) -> ArrayViewD<'_, S> {
        let e = &self.layout.entries[i];
        ArrayViewD::from_shape(IxDyn(&e.shape), &self.data[e.range()]).expect("layout shape")
    }

    /// Tensor `i`, which must be two-dimensional, as a matrix view.
    #[inline]
    pub fn mat(&self, i: usize) -> ArrayView2<'_, S> {
        let e = &self.layout.entries[i];
        debug_assert_eq!(e.shape.len(), 2, "{} is not a matrix", e.name);
        ArrayView2::from_shape((e.shape[0], e.shape[1]), &self.data[e.range()]).expect("matrix")
    }

    /// Tensor `i`, which must be two-dimensional, as a mutable matrix view.
    #[inline]
    pub fn mat_mut(&mut self, i: usize) -> ArrayViewMut2<'_, S> {
        let e = &self.layout.entries[i];
        debug_assert_eq!(e.shape.len(), 2, "{} is not a matrix", e.name);
        let (r, c) = (e.shape[0], e.shape[1]);
        let range = e.range();
        ArrayViewMut2::from_shape((r, c), &mut self.data[range]).expect("matrix")
    }

    /// Tensor `i` flattened to a vector view.
    #[inline]
    pub fn vec(&self, i: usize) -> ArrayView1<'_, S> {
        ArrayView1::from(self.slice(i))
    }

    /// Tensor `i` flattened to a mutable vector view.
    #[inline]
    pub fn vec_mut(&mut self, i: usize) -> ArrayViewMut1<'_, S> {
        ArrayViewMut1::from(self.slice_mut(i))
    }

    /// Tensor `name` as an n-dimensional view.
    pub fn get(&self, name: &str) -> Option<ArrayViewD<'_, S>> {
        self.layout.index_of(name).map(|i| self.view(i))
    }

    /// Copies every tensor of `src` into `self`, checking names and shapes first so that a
    /// mismatch changes nothing.
    pub fn assign(&mut self, src: &Tensors<S>) -> Result<()> {
        if *src.layout != *self.layout {
            return Err(Error::Tensors(describe_mismatch(&self.layout, &src.layout)));
        }
        self.data.copy_from_slice(&src.data);
        Ok(())
    }

    /// Whether every element is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// Converts every element to another scalar type.
    pub fn cast<T: Scalar>(&self) -> Tensors<T> {
        Tensors {
            layout: self.layout.clone(),
            data: self.data.iter().map(|v| T::from_f64(v.as_f64())).collect(),
        }
    }
}

/// A sentence naming the first difference between two layouts.
pub fn describe_mismatch(want: &Layout, got: &Layout) -> String {
    for w in &want.entries {
        match got.entries.iter().find(|g| g.name == w.name) {
            None => return format!("tensor '{}' is missing", w.name),
            Some(g) if g.shape != w.shape => {
                return format!(
                    "tensor '{}' has shape {:?}, expected {:?}",
                    w.name, g.shape, w.shape
                );
            }
            _ => {}
        }
    }
    for g in &got.entries {
        if want.index_of(&g.name).is_none() {
            return format!("unexpected tensor '{}'", g.name);
        }
    }
    "tensors are in a different order".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_offsets_and_views() {
        let l = Layout::new().with("a", &[2, 3]).with("b", &[4]);
        assert_eq!(l.total(), 10);
        let mut t = Tensors::<f64>::zeros(l.clone());
        t.slice_mut(1).copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        t.mat_mut(0)[[1, 2]] = 9.0;
        assert_eq!(t.data()[5], 9.0);
        assert_eq!(t.vec(1)[3], 4.0);
        assert_eq!(t.get("b").unwrap().len(), 4);
        let b = l.batched(3);
        assert_eq!(b.entries()[1].shape, vec![3, 4]);
        assert_eq!(b.total(), 30);
    }

    #[test]
    fn assign_refuses_other_layouts_and_changes_nothing() {
        let mut t = Tensors::<f32>::zeros(Layout::new().with("a", &[2]));
        let other = Tensors::<f32>::from_vec(Layout::new().with("a", &[3]), vec![1.0; 3]).unwrap();
        let err = t.assign(&other).unwrap_err().to_string();
        assert!(err.contains("'a' has shape [3], expected [2]"), "{err}");
        assert_eq!(t.data(), &[0.0, 0.0]);
        let renamed =
            Tensors::<f32>::from_vec(Layout::new().with("b", &[2]), vec![1.0; 2]).unwrap();
        assert!(
            t.assign(&renamed)
                .unwrap_err()
                .to_string()
                .contains("'a' is missing")
        );
    }
}
