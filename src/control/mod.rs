//! Control plane: the admin listener today; the dial, guard and rollout join it later.

pub mod admin;
