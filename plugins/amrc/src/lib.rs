//! AMRC.
