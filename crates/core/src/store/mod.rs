//! Model store.
